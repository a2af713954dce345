//! argon2id password hashes, computed off the async runtime.

use crate::error::ApiError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 256;

pub fn check_strength(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(ApiError::BadRequest(format!("a password needs at least {MIN_PASSWORD_CHARS} characters")));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(ApiError::BadRequest(format!("a password has at most {MAX_PASSWORD_CHARS} characters")));
    }
    Ok(())
}

/// The PHC string (`$argon2id$v=19$…`) of a password, with a random salt.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| ApiError::Internal(e.to_string().into()))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Does `password` match the PHC string `hash`?
pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
        .await
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so that a wrong
/// e-mail address takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0dTq8nkyYcNzpwTqTBmUlR0w6RlWrnXm43hxBRxGvB0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let h1 = hash("correct horse battery".into()).await.unwrap();
        let h2 = hash("correct horse battery".into()).await.unwrap();
        assert!(h1.starts_with("$argon2id$"));
        assert_ne!(h1, h2, "salted");
        assert!(verify("correct horse battery".into(), h1.clone()).await);
        assert!(!verify("wrong horse battery".into(), h1).await);
        assert!(!verify("anything".into(), "not a hash".into()).await);
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("long enough pass").is_ok());
    }
}
