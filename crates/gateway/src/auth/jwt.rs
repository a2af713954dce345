//! Access tokens: HS256 JWTs with issuer, audience, expiry, tenant and the
//! user's session version (`sv`: see [`super::session`]).

use super::Caller;
use crate::error::ApiError;
use jamuna_domain::user::Role;
use jamuna_domain::{TenantId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub role: Role,
    #[serde(default)]
    pub visitor: bool,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The user's session version when the token was issued; 0 in tokens
    /// from before it existed (void once the user has any session-ending event).
    #[serde(default)]
    pub sv: u64,
    /// A socket ticket's id (single use); access tokens have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// How long a socket ticket may wait for its socket.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// A token whose signature, issuer, audience and expiry are good.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub caller: Caller,
    /// The session version it carries.
    pub session: u64,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

/// Issues and verifies access tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Socket tickets: the same key, their own audience, so neither passes for the other.
    ticket_validation: Validation,
    issuer: String,
    audience: String,
    pub access_ttl: Duration,
    /// The key of the customer view's agent aliases ([`crate::view`]), derived from the same secret.
    view_key: [u8; 32],
}

impl Tokens {
    /// The secret must be at least 32 bytes: a short HMAC key is guessable.
    pub fn new(secret: &SecretString, issuer: &str, audience: &str, access_ttl: Duration) -> Result<Self, String> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < 32 {
            return Err("the JWT secret must be at least 32 bytes".into());
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let mut ticket_validation = validation.clone();
        ticket_validation.set_audience(&[ticket_audience(audience)]);
        ticket_validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "jti"]);
        ticket_validation.leeway = 0;
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            ticket_validation,
            issuer: issuer.into(),
            audience: audience.into(),
            access_ttl,
            view_key: crate::view::derive_key(bytes),
        })
    }

    /// The key of the agents' aliases in the customer view.
    pub fn view_key(&self) -> &[u8; 32] {
        &self.view_key
    }

    /// A token for `caller` at session version `sv`.
    pub fn issue(&self, caller: &Caller, sv: u64) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: caller.user.to_string(),
            tenant: caller.tenant.to_string(),
            role: caller.role,
            visitor: caller.visitor,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            sv,
            jti: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    /// A single-use socket ticket for `caller` at session version `sv`,
    /// valid for [`TICKET_TTL`]: what goes in a socket's URL instead of the
    /// access token (URLs end up in logs). Its id is returned with it.
    pub fn issue_ticket(&self, caller: &Caller, sv: u64) -> Result<(String, String), ApiError> {
        let now = chrono::Utc::now().timestamp();
        let mut nonce = [0u8; 16];
        rand::fill(&mut nonce);
        let jti: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let claims = Claims {
            sub: caller.user.to_string(),
            tenant: caller.tenant.to_string(),
            role: caller.role,
            visitor: caller.visitor,
            iss: self.issuer.clone(),
            aud: ticket_audience(&self.audience),
            iat: now,
            exp: now + TICKET_TTL.as_secs() as i64,
            sv,
            jti: Some(jti.clone()),
        };
        let ticket = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)?;
        Ok((ticket, jti))
    }

    /// Checks a socket ticket as [`Self::verify`] checks a token (an access
    /// token is not a ticket); returns it with its id, whose single use the
    /// caller enforces.
    pub fn verify_ticket(&self, ticket: &str) -> Result<(Verified, String), ApiError> {
        let (verified, claims) = self.decode(ticket, &self.ticket_validation)?;
        let jti = claims.jti.ok_or_else(|| ApiError::Unauthorized("the ticket is invalid".into()))?;
        Ok((verified, jti))
    }

    /// Checks signature (HS256 only: `alg: none` and other algorithms are
    /// refused), issuer, audience and expiry, and parses the identity. It does
    /// not check the session: use [`super::authenticate`] for that.
    pub fn verify_access(&self, token: &str) -> Result<Caller, ApiError> {
        self.verify(token).map(|v| v.caller)
    }

    /// [`Self::verify_access`], with the token's session version and expiry.
    pub fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        let (verified, claims) = self.decode(token, &self.validation)?;
        if claims.jti.is_some() {
            return Err(ApiError::Unauthorized("a socket ticket is not an access token".into()));
        }
        Ok(verified)
    }

    fn decode(&self, token: &str, validation: &Validation) -> Result<(Verified, Claims), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::ExpiredSignature => "the token has expired",
                K::InvalidAudience => "the token is for another audience",
                K::InvalidIssuer => "the token is from another issuer",
                K::InvalidAlgorithm => "the token's algorithm is not accepted",
                K::InvalidSignature => "the token's signature is invalid",
                _ => "the token is invalid",
            };
            ApiError::Unauthorized(why.into())
        })?;
        let c = data.claims;
        let bad = |_| ApiError::Unauthorized("the token is invalid".into());
        let caller = Caller {
            user: UserId::parse(c.sub.clone()).map_err(bad)?,
            tenant: TenantId::parse(c.tenant.clone()).map_err(bad)?,
            role: c.role,
            visitor: c.visitor,
        };
        Ok((Verified { caller, session: c.sv, expires_at: c.exp }, c))
    }
}

fn ticket_audience(audience: &str) -> String {
    format!("{audience}/socket-ticket")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn tokens(secret: &str) -> Tokens {
        Tokens::new(&SecretString::from(secret.to_string()), "jamuna", "jamuna-api", Duration::from_secs(900)).unwrap()
    }
    fn caller() -> Caller {
        Caller { user: UserId::parse("u1").unwrap(), tenant: TenantId::parse("acme").unwrap(), role: Role::Agent, visitor: false }
    }
    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_round_trips() {
        let t = tokens(SECRET);
        let v = t.verify(&t.issue(&caller(), 7).unwrap()).unwrap();
        assert_eq!((v.caller, v.session), (caller(), 7));
        assert!(v.expires_at > chrono::Utc::now().timestamp());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(Tokens::new(&SecretString::from("short".to_string()), "i", "a", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn forged_tokens_are_refused() {
        let t = tokens(SECRET);
        let good = t.issue(&caller(), 0).unwrap();
        // Signed with another key.
        assert!(tokens("another secret of thirty-two bytes!!").verify_access(&good).is_err());
        // alg: none, no signature.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = good.split('.').nth(1).unwrap();
        let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), payload);
        assert!(t.verify_access(&none).is_err());
        // Another audience.
        let other = Tokens::new(&SecretString::from(SECRET.to_string()), "jamuna", "someone-else", Duration::from_secs(900)).unwrap();
        assert!(t.verify_access(&other.issue(&caller(), 0).unwrap()).is_err());
        // Expired.
        let expired = Tokens::new(&SecretString::from(SECRET.to_string()), "jamuna", "jamuna-api", Duration::ZERO).unwrap();
        let mut claims_token = expired.issue(&caller(), 0).unwrap();
        claims_token = {
            // Re-sign with exp an hour ago.
            let now = chrono::Utc::now().timestamp();
            let c = Claims {
                sub: "u1".into(),
                tenant: "acme".into(),
                role: Role::Agent,
                visitor: false,
                iss: "jamuna".into(),
                aud: "jamuna-api".into(),
                iat: now - 7200,
                exp: now - 3600,
                sv: 0,
                jti: None,
            };
            let _ = claims_token;
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
        };
        assert!(matches!(t.verify_access(&claims_token), Err(ApiError::Unauthorized(m)) if m.contains("expired")));
        // Garbage.
        assert!(t.verify_access("not.a.token").is_err());
    }

    #[test]
    fn a_socket_ticket_and_an_access_token_do_not_pass_for_each_other() {
        let t = tokens(SECRET);
        let (ticket, jti) = t.issue_ticket(&caller(), 3).unwrap();
        let (v, id) = t.verify_ticket(&ticket).unwrap();
        assert_eq!((v.caller, v.session, id), (caller(), 3, jti));
        assert!(t.verify(&ticket).is_err(), "a ticket is not an access token");
        assert!(t.verify_ticket(&t.issue(&caller(), 3).unwrap()).is_err(), "an access token is not a ticket");
        assert!(tokens(&"y".repeat(40)).verify_ticket(&ticket).is_err(), "another key's ticket");
    }
}
