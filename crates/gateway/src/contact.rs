//! Who the customer is: identities signed by the tenant's website, the
//! pre-chat form, and a customer's contact address.
//!
//! **The identity secret.** Each tenant has a secret its web server signs its
//! signed-in customers' ids with: `signature = hex(HMAC-SHA256(secret, id))`.
//! The secret never enters the event log: it is derived from an entry of the
//! key store (`identity-secret-<key id>`, the store that already holds every
//! data key outside the log, replicated in the distributed mode and
//! erasable), and the log records only which entry is current
//! (`IdentitySecretRotated { key_id, previous, previous_valid_until }`). So a
//! copy of the log (a backup, a replica, an export) holds no secret, and
//! rotating is making a new entry. The secret is shown once, when it is made;
//! the previous one keeps verifying for the grace period the admin chose (0
//! to 7 days; at 0 its key-store entry is deleted at once).
//!
//! **Identify.** The widget sends the signed id with a name, an e-mail and
//! attributes. The signature is checked in constant time against each secret
//! valid now; failures count against the client address in the sign-in tiers
//! (5 a minute, …), a success clears them. A valid signature makes the
//! caller the customer of that external id, on any device: one customer per
//! external id is kept by a claim (the [`EmailClaim`] aggregate, the same
//! rules as for e-mail addresses, its stream named by an HMAC of tenant and
//! external id under the key-store entry `identity-claims`, so the log
//! cannot be searched by external id). The first identify claims the id for
//! the calling visitor (their earlier conversations stay theirs) or a new
//! customer; every later one — another browser, another phone — gets fresh
//! tokens for the claim's holder, so their past conversations follow. A
//! visitor can never become another identified customer without a valid
//! signature of that customer's id: the only path to a holder's tokens is the
//! signature, which only the tenant's server can make.
//!
//! The identity itself is `CustomerIdentified` on the customer's user
//! stream, every field sealed with the user's key: erasing the user shreds
//! it, the read models drop it, and erasure releases the claim (and deletes
//! the claim's key), so nothing ties the external id to the old user.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::auth::register_visitor;
use hmac::Mac;
use jamuna_commands::handler::{CommandContext, CommandError};
use jamuna_domain::email_claim::{EmailClaim, EmailClaimCommand, EmailClaimError, EmailClaimEvent};
use jamuna_domain::tenant::{PrechatMode, Tenant};
use jamuna_domain::user::{CustomerDetails, Role, User, UserCommand, UserEvent};
use jamuna_domain::{Aggregate, Personal, StreamId, TenantId, UserId};
use jamuna_projections::users::CustomerIdentity;

/// The key-store subject whose key names the claims of a tenant's external ids.
const CLAIMS_KEY: &str = "identity-claims";

/// The key-store subject an identity secret is derived from.
fn secret_subject(key_id: &str) -> Result<UserId, ApiError> {
    UserId::parse(format!("identity-secret-{key_id}")).map_err(ApiError::internal)
}

/// The identity secret of key-store entry `key_id`, as the tenant's server
/// uses it: `jis_` and 64 hex digits (the HMAC key is this text's bytes).
pub async fn secret(state: &AppState, tenant: &TenantId, key_id: &str) -> Result<Option<String>, ApiError> {
    let key = state.commands.sealer().keys().key_for_opening(tenant, &secret_subject(key_id)?).await.map_err(ApiError::internal)?;
    Ok(key.map(|k| format!("jis_{}", hex(&k.mac(b"jamuna identity secret v1")))))
}

/// Makes the key-store entry of a new secret and answers it.
pub async fn new_secret(state: &AppState, tenant: &TenantId, key_id: &str) -> Result<String, ApiError> {
    let key = state.commands.sealer().keys().key_for_sealing(tenant, &secret_subject(key_id)?).await.map_err(ApiError::internal)?;
    Ok(format!("jis_{}", hex(&key.mac(b"jamuna identity secret v1"))))
}

/// Deletes a secret's key-store entry: it never verifies again.
pub async fn delete_secret(state: &AppState, tenant: &TenantId, key_id: &str) -> Result<(), ApiError> {
    state.commands.sealer().keys().erase(tenant, &secret_subject(key_id)?).await.map_err(ApiError::internal)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The signature of `external_id` under `secret`, as the tenant's server
/// makes it: `hex(HMAC-SHA256(secret, external_id))`.
pub fn sign(secret: &str, external_id: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(external_id.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Does `signature` (hex) sign `external_id` under `secret`? Constant time.
pub fn signature_matches(secret: &str, external_id: &str, signature: &str) -> bool {
    let Some(given) = unhex(signature.trim()) else { return false };
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(external_id.as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// An identify request, as the widget sends it.
pub struct Identify {
    pub details: CustomerDetails,
    pub signature: String,
}

/// Verifies the signature and makes the caller the customer of the external
/// id (see the module docs): answers that customer, to issue tokens for.
pub async fn identify(
    state: &AppState,
    ctx: &CommandContext,
    tenant: &TenantId,
    visitor: Option<&Caller>,
    client: &str,
    req: Identify,
) -> Result<Caller, ApiError> {
    let external_id = req.details.external_id.as_deref().map(str::trim).unwrap_or_default().to_owned();
    state.limiter.login_attempt(tenant.as_str(), &format!("identify:{client}")).await?;
    let secrets = state.commands.load::<Tenant>(&StreamId::of_tenant(tenant)).await?;
    let mut verified = false;
    for key_id in secrets.identity_secrets(ctx.now) {
        if let Some(secret) = secret(state, tenant, key_id).await?
            && signature_matches(&secret, &external_id, &req.signature)
        {
            verified = true;
        }
    }
    if !verified {
        metrics::counter!("jamuna_identify_refused_total").increment(1);
        return Err(ApiError::InvalidSignature("the signature does not match the customer id (or no identity secret is set)".into()));
    }
    state.limiter.login_succeeded(tenant.as_str(), &format!("identify:{client}")).await;
    // Whatever the domain would refuse (a long name, too many attributes), refuse before claiming.
    let command = UserCommand::Identify { details: req.details.clone(), verified: true };
    let mut probe = User::default();
    probe.apply(&UserEvent::UserRegistered {
        tenant: tenant.clone(),
        user_id: UserId::parse("probe").map_err(ApiError::internal)?,
        role: Role::Customer,
        name: None,
        email: None,
        password_hash: None,
    });
    probe.decide(&command, ctx.now).map_err(|e| ApiError::from(CommandError::Rejected(e)))?;

    // The caller's own anonymous identity is claimed if it has none yet.
    let candidate = match visitor {
        Some(c) if c.visitor && c.role == Role::Customer && c.tenant == *tenant => {
            let user = state.commands.load::<User>(&StreamId::user(tenant, &c.user)).await?;
            (!user.is_verified() && !user.is_erased() && user.role() == Some(Role::Customer)).then(|| c.user.clone())
        }
        _ => None,
    }
    .unwrap_or_else(|| UserId::from_uuid(uuid::Uuid::now_v7()));
    let stream = claim_stream(state, tenant, &external_id).await?;
    let subject = UserId::parse(format!("claim-{}", uuid::Uuid::now_v7().simple())).map_err(ApiError::internal)?;
    let claim = EmailClaimCommand::Claim { user: candidate.clone(), subject };
    let holder = match state.commands.execute::<EmailClaim>(&stream, &claim, ctx).await {
        Ok(_) => candidate,
        Err(CommandError::Rejected(EmailClaimError::AlreadyClaimed)) => {
            holder(state, &stream).await?.ok_or_else(|| ApiError::Unavailable("the customer's claim does not read".into()))?
        }
        Err(e) => return Err(e.into()),
    };
    // Idempotent: a visitor registered before, or a claim whose registration stopped half way.
    register_visitor(state, tenant, holder.clone()).await?;
    let record = state.directory.user(tenant, &holder).await?;
    let wanted = as_identity(&req.details, true);
    if record.as_ref().and_then(|r| r.identity.as_ref()) != Some(&wanted) {
        let done = state.commands.execute::<User>(&StreamId::user(tenant, &holder), &command, ctx).await?;
        if let Some(a) = done.appended {
            state.directory.caught_up(a.last_position).await?;
        }
    }
    metrics::counter!("jamuna_customers_identified_total").increment(1);
    Ok(Caller { user: holder, tenant: tenant.clone(), role: Role::Customer, visitor: false })
}

/// What the read model shows for `details` (to skip an unchanged identity).
fn as_identity(d: &CustomerDetails, verified: bool) -> CustomerIdentity {
    let clean = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    CustomerIdentity {
        external_id: clean(&d.external_id),
        name: clean(&d.name),
        email: d.email.as_ref().map(|e| e.as_str().to_owned()),
        attributes: d.attributes.clone(),
        verified,
    }
}

/// Records the pre-chat form's details as the caller's unverified identity
/// (nothing if the website already vouched for them).
pub async fn give_details(state: &AppState, ctx: &CommandContext, caller: &Caller, details: CustomerDetails) -> Result<(), ApiError> {
    if caller.is_staff() {
        return Err(ApiError::Forbidden("the pre-chat form is for customers".into()));
    }
    let command = UserCommand::Identify { details, verified: false };
    let done = state.commands.execute::<User>(&StreamId::user(&caller.tenant, &caller.user), &command, ctx).await?;
    if let Some(a) = done.appended {
        state.directory.caught_up(a.last_position).await?;
    }
    Ok(())
}

/// Refuses a customer who must fill in the tenant's pre-chat form and has
/// not (nor been identified by the website): 409 `prechat_required`.
pub async fn require_prechat(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if caller.is_staff() {
        return Ok(());
    }
    let required = state.directory.tenant(&caller.tenant).await?.is_some_and(|t| t.settings.prechat == PrechatMode::Required);
    if !required {
        return Ok(());
    }
    let user = state.directory.user(&caller.tenant, &caller.user).await?;
    let identity = user.as_ref().and_then(|u| u.identity.as_ref());
    if identity.is_some_and(|i| i.verified || (i.name.is_some() && i.email.is_some())) {
        return Ok(());
    }
    Err(ApiError::Conflict { code: "prechat_required", message: "give your name and e-mail address first (the pre-chat form)".into() })
}

/// The address to e-mail a customer at: their verified identity's, then the
/// pre-chat form's, then their account's. `None`: none given, or erased.
pub async fn contact_email(state: &AppState, tenant: &TenantId, user: &UserId) -> Result<Option<String>, ApiError> {
    let Some(u) = state.directory.user(tenant, user).await? else { return Ok(None) };
    Ok(contact_email_of(&u))
}

/// [`contact_email`] on a record already read.
pub fn contact_email_of(u: &crate::directory::UserInfo) -> Option<String> {
    jamuna_projections::users::contact_email(u.identity.as_ref(), u.email.as_deref(), u.erased)
}

/// The stream of the claim of `external_id` in `tenant`.
async fn claim_stream(state: &AppState, tenant: &TenantId, external_id: &str) -> Result<StreamId, ApiError> {
    let subject = UserId::parse(CLAIMS_KEY).map_err(ApiError::internal)?;
    let key = state.commands.sealer().keys().key_for_sealing(tenant, &subject).await.map_err(ApiError::internal)?;
    Ok(StreamId::email_claim(tenant, &key.mac(format!("{tenant}\nexternal-id\n{external_id}").as_bytes())))
}

/// Every claim made in the stream, oldest first: its subject and holder.
async fn claims(state: &AppState, stream: &StreamId) -> Result<Vec<(UserId, Personal)>, ApiError> {
    let mut out = Vec::new();
    for recorded in state.commands.log().read_stream(stream, 0).await? {
        if let EmailClaimEvent::EmailClaimed { subject, user } =
            state.commands.sealer().open(&recorded).await.map_err(ApiError::internal)?.data
        {
            out.push((subject, user));
        }
    }
    Ok(out)
}

async fn holder(state: &AppState, stream: &StreamId) -> Result<Option<UserId>, ApiError> {
    let current = state.commands.load::<EmailClaim>(stream).await?;
    let Some(current) = current.current() else { return Ok(None) };
    let found = claims(state, stream).await?.into_iter().rev().find(|(s, _)| s == current);
    Ok(match found {
        Some((_, Personal::Plain(user))) => UserId::parse(user).ok(),
        _ => None,
    })
}

/// Releases the claims of every external id `user` was identified as and
/// deletes each claim's key. Call before the user's own key is deleted.
pub async fn release(state: &AppState, ctx: &CommandContext, tenant: &TenantId, user: &UserId) -> Result<(), ApiError> {
    let mut ids = Vec::new();
    for recorded in state.commands.log().read_stream(&StreamId::user(tenant, user), 0).await? {
        if recorded.event_type != "CustomerIdentified" {
            continue;
        }
        let opened = state.commands.sealer().open::<UserEvent>(&recorded).await.map_err(ApiError::internal)?;
        if let UserEvent::CustomerIdentified { external_id: Some(Personal::Plain(x)), verified: true, .. } = opened.data
            && !ids.contains(&x)
        {
            ids.push(x);
        }
    }
    for x in ids {
        let stream = claim_stream(state, tenant, &x).await?;
        for (subject, holder) in claims(state, &stream).await? {
            if matches!(&holder, Personal::Plain(h) if h == user.as_str()) {
                state.commands.execute::<EmailClaim>(&stream, &EmailClaimCommand::Release { subject: subject.clone() }, ctx).await?;
                state.commands.sealer().keys().erase(tenant, &subject).await.map_err(ApiError::internal)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hex_hmac_of_the_id_under_the_secret() {
        // RFC 4231 test case 2: key "Jefe".
        let sig = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(sign("Jefe", "what do ya want for nothing?"), sig);
        assert!(signature_matches("Jefe", "what do ya want for nothing?", sig));
        assert!(signature_matches("Jefe", "what do ya want for nothing?", &sig.to_uppercase()), "hex in either case");
        assert!(!signature_matches("Jefe", "what do ya want for nothing!", sig), "another id");
        assert!(!signature_matches("jefe", "what do ya want for nothing?", sig), "another secret");
        for bad in ["", "zz", &sig[..62], "5bd"] {
            assert!(!signature_matches("Jefe", "what do ya want for nothing?", bad), "{bad:?}");
        }
    }

    fn info(email: Option<&str>, identity: Option<CustomerIdentity>) -> crate::directory::UserInfo {
        crate::directory::UserInfo {
            id: UserId::parse("u1").unwrap(),
            tenant: TenantId::parse("acme").unwrap(),
            role: Role::Customer,
            name: None,
            email: email.map(str::to_owned),
            password_hash: None,
            erased: false,
            registered_at: chrono::Utc::now(),
            identity,
        }
    }

    #[test]
    fn the_contact_address_is_the_verified_one_then_the_forms_then_the_accounts() {
        let id = |email: &str, verified| CustomerIdentity { email: Some(email.into()), verified, ..Default::default() };
        assert_eq!(contact_email_of(&info(Some("acc@x.io"), Some(id("v@x.io", true)))).as_deref(), Some("v@x.io"));
        assert_eq!(contact_email_of(&info(Some("acc@x.io"), Some(id("f@x.io", false)))).as_deref(), Some("f@x.io"));
        assert_eq!(contact_email_of(&info(Some("acc@x.io"), None)).as_deref(), Some("acc@x.io"));
        let no_email = CustomerIdentity { verified: true, ..Default::default() };
        assert_eq!(contact_email_of(&info(Some("acc@x.io"), Some(no_email))).as_deref(), Some("acc@x.io"));
        assert_eq!(contact_email_of(&info(None, None)), None);
        assert_eq!(contact_email_of(&crate::directory::UserInfo { erased: true, ..info(Some("a@x.io"), None) }), None);
    }
}
