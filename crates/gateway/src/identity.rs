//! Who holds an e-mail address.
//!
//! A user's id is random, so an address leads to no id. One address per
//! tenant is kept by the address's claim ([`jamuna_domain::email_claim`]):
//! its stream is named by an HMAC-SHA256 of tenant and address under a
//! per-tenant key in the key store (the subject `email-claims`), so the log
//! alone cannot be searched by address.
//!
//! Registering claims the address, then registers the user; erasing releases
//! the claim, then erases the user. Both are written so that a request that
//! failed half way is repeated to completion:
//!
//! - a claim whose user never registered (the registration stopped after the
//!   claim) is finished by the next registration of the address, under the
//!   claimed id;
//! - erase reads the address from the user's own registration (it opens until
//!   their key is deleted, the last step), releases every claim of theirs
//!   and deletes each claim's key, all idempotent.
//!
//! Users registered before claims existed have ids derived from tenant and
//! address ([`legacy_user_id`]) and no claim: while such a user is live, their
//! address counts as taken.

use crate::error::ApiError;
use jamuna_commands::handler::{CommandContext, CommandError, CommandHandler};
use jamuna_commands::log::Appended;
use jamuna_domain::email_claim::{EmailClaim, EmailClaimCommand, EmailClaimError, EmailClaimEvent};
use jamuna_domain::user::{Email, Role, User, UserCommand, UserError, UserEvent};
use jamuna_domain::{Aggregate, Personal, StreamId, TenantId, UserId};
use sha2::{Digest, Sha256};

/// The key-store subject whose key names the claims of a tenant's addresses
/// (never a user's id: those are UUIDs, or `seed-…` in dev mode).
const CLAIMS_KEY: &str = "email-claims";

/// The id a user registered before claims existed got from tenant and address.
pub fn legacy_user_id(tenant: &TenantId, email: &Email) -> UserId {
    let digest = Sha256::digest(format!("{tenant}\n{}", email.as_str()).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    UserId::from_uuid(uuid::Uuid::from_bytes(bytes))
}

/// The stream of the claim of `email` in `tenant`.
pub async fn claim_stream(commands: &CommandHandler, tenant: &TenantId, email: &Email) -> Result<StreamId, ApiError> {
    let subject = UserId::parse(CLAIMS_KEY).map_err(ApiError::internal)?;
    let key = commands.sealer().keys().key_for_sealing(tenant, &subject).await.map_err(ApiError::internal)?;
    Ok(StreamId::email_claim(tenant, &key.mac(format!("{tenant}\n{}", email.as_str()).as_bytes())))
}

/// A registration to make: everything but the id, which is made here.
pub struct NewUser {
    pub tenant: TenantId,
    pub role: Role,
    pub name: Option<String>,
    pub email: Email,
    /// An argon2id PHC string.
    pub password_hash: Option<String>,
}

/// What a registration did.
#[derive(Debug)]
pub enum Registered {
    /// A new user, and where their registration was appended.
    New { user: UserId, appended: Option<Appended> },
    /// The address belongs to someone: nothing was written.
    Taken,
}

/// Claims the address and registers a user with a new random id (or
/// finishes an earlier registration of the address that stopped after its
/// claim). A taken address is [`Registered::Taken`], not an error, so the
/// caller decides what to tell.
pub async fn register(commands: &CommandHandler, ctx: &CommandContext, new: NewUser) -> Result<Registered, ApiError> {
    let NewUser { tenant, role, name, email, password_hash } = new;
    let fresh = UserId::from_uuid(uuid::Uuid::now_v7());
    let mut command =
        UserCommand::Register { tenant: tenant.clone(), user_id: fresh.clone(), role, name, email: Some(email.clone()), password_hash };
    // Whatever the domain would refuse (a long name), refuse before claiming.
    User::default().decide(&command, ctx.now).map_err(|e| ApiError::from(CommandError::Rejected(e)))?;

    let legacy = commands.load::<User>(&StreamId::user(&tenant, &legacy_user_id(&tenant, &email))).await?;
    if legacy.role().is_some() && !legacy.is_erased() {
        return Ok(Registered::Taken);
    }

    let claim = claim_stream(commands, &tenant, &email).await?;
    let subject = UserId::parse(format!("claim-{}", uuid::Uuid::now_v7().simple())).map_err(ApiError::internal)?;
    let user = match commands.execute::<EmailClaim>(&claim, &EmailClaimCommand::Claim { user: fresh.clone(), subject }, ctx).await {
        Ok(_) => fresh,
        Err(CommandError::Rejected(EmailClaimError::AlreadyClaimed)) => match holder(commands, &claim).await? {
            // The registration that claimed it stopped half way: finish it.
            Some(h) if commands.load::<User>(&StreamId::user(&tenant, &h)).await?.version() == 0 => h,
            _ => return Ok(Registered::Taken),
        },
        Err(e) => return Err(e.into()),
    };
    if let UserCommand::Register { user_id, .. } = &mut command {
        *user_id = user.clone();
    }
    match commands.execute::<User>(&StreamId::user(&tenant, &user), &command, ctx).await {
        Ok(done) => Ok(Registered::New { user, appended: done.appended }),
        // A concurrent registration finished the same claim first.
        Err(CommandError::Rejected(UserError::AlreadyRegistered)) => Ok(Registered::Taken),
        Err(e) => Err(e.into()),
    }
}

/// Releases every claim `user` holds and deletes each claim's key, so that
/// the address can register again and no claim says whose it was. Call
/// before the user's own key is deleted (their address is read with it);
/// once it is gone there is nothing left to release.
pub async fn release(commands: &CommandHandler, ctx: &CommandContext, tenant: &TenantId, user: &UserId) -> Result<(), ApiError> {
    let Some(email) = address_of(commands, tenant, user).await? else {
        return Ok(());
    };
    let stream = claim_stream(commands, tenant, &email).await?;
    for (subject, holder) in claims(commands, &stream).await? {
        if matches!(&holder, Personal::Plain(h) if h == user.as_str()) {
            commands.execute::<EmailClaim>(&stream, &EmailClaimCommand::Release { subject: subject.clone() }, ctx).await?;
            commands.sealer().keys().erase(tenant, &subject).await.map_err(ApiError::internal)?;
        }
    }
    Ok(())
}

/// The user's address, from their registration (`None`: a visitor, no such
/// user, or their key is gone).
async fn address_of(commands: &CommandHandler, tenant: &TenantId, user: &UserId) -> Result<Option<Email>, ApiError> {
    for recorded in commands.log().read_stream(&StreamId::user(tenant, user), 0).await? {
        if recorded.event_type != "UserRegistered" {
            continue;
        }
        let opened = commands.sealer().open::<UserEvent>(&recorded).await.map_err(ApiError::internal)?;
        if let UserEvent::UserRegistered { email: Some(Personal::Plain(e)), .. } = opened.data {
            return Ok(Email::parse(&e).ok());
        }
    }
    Ok(None)
}

/// Every claim made in the stream, oldest first: its subject and its holder
/// (erased once the claim's key is deleted).
async fn claims(commands: &CommandHandler, stream: &StreamId) -> Result<Vec<(UserId, Personal)>, ApiError> {
    let mut out = Vec::new();
    for recorded in commands.log().read_stream(stream, 0).await? {
        if let EmailClaimEvent::EmailClaimed { subject, user } = commands.sealer().open(&recorded).await.map_err(ApiError::internal)?.data {
            out.push((subject, user));
        }
    }
    Ok(out)
}

/// The user the current claim is for, if the address is claimed and its
/// holder still reads.
async fn holder(commands: &CommandHandler, stream: &StreamId) -> Result<Option<UserId>, ApiError> {
    let state = commands.load::<EmailClaim>(stream).await?;
    let Some(current) = state.current() else { return Ok(None) };
    let found = claims(commands, stream).await?.into_iter().rev().find(|(s, _)| s == current);
    Ok(match found {
        Some((_, Personal::Plain(user))) => UserId::parse(user).ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_id_is_the_one_users_were_given() {
        // The id `user_id_for_email` gave ada@example.com in acme before claims existed.
        let tenant = TenantId::parse("acme").unwrap();
        let email = Email::parse("ada@example.com").unwrap();
        let digest = Sha256::digest(b"acme\nada@example.com");
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let old = UserId::from_uuid(uuid::Uuid::from_u128(u128::from_str_radix(&hex, 16).unwrap()));
        assert_eq!(legacy_user_id(&tenant, &email), old);
    }
}
