//! The users and tenants read model: who can log in, with which role, and
//! which tenant a widget key opens.
//!
//! A user's name, e-mail address and password hash are personal data: they
//! are sealed in the log and opened here. When a user is erased they are
//! dropped (`None`) and the record says `erased`, which is also what a replay
//! produces once the user's key is gone. Tenants carry no personal data.

#[cfg(feature = "testing")]
pub mod contract;
pub mod mongo;
pub mod sqlite;

use crate::error::{ProjectionError, StoreError};
use crate::event::{Interest, Opened, ReadModel, ReadModelProjection};
use crate::runtime::Projection;
use async_trait::async_trait;
use jamuna_commands::Sealer;
use jamuna_domain::tenant::{TenantEvent, TenantSettings};
use jamuna_domain::user::{Role, UserEvent};
use jamuna_domain::{AggregateKind, Personal, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The projection's name, and the key of its checkpoint.
pub const PROJECTION: &str = "users";
/// The most users one list call returns.
pub const MAX_USERS: usize = 500;

/// A user as login and the admin page need them.
///
/// Holds the password hash: map it to a public shape before it leaves the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub tenant: TenantId,
    pub role: Role,
    pub name: Option<String>,
    /// Lower case, as registered.
    pub email: Option<String>,
    /// An argon2id PHC string.
    pub password_hash: Option<String>,
    pub erased: bool,
    pub registered_at: Timestamp,
    pub version: u64,
    /// The log position this record reflects.
    pub position: u64,
    /// Who a customer said they are (the latest identity), dropped on erasure.
    /// Records written before identities existed read as `None`.
    #[serde(default)]
    pub identity: Option<CustomerIdentity>,
}

/// A customer's identity, as the contact panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CustomerIdentity {
    /// The host site's id of the customer (verified identities only).
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Signed by the tenant's website, not just typed into a form.
    pub verified: bool,
}

/// Where to e-mail a user: a verified identity's address first, then the
/// pre-chat form's, then a registered account's; none once erased. The one
/// rule the contact panel and the e-mail notifier share.
pub fn contact_email(identity: Option<&CustomerIdentity>, account: Option<&str>, erased: bool) -> Option<String> {
    if erased {
        return None;
    }
    let verified = identity.filter(|i| i.verified).and_then(|i| i.email.clone());
    let form = identity.filter(|i| !i.verified).and_then(|i| i.email.clone());
    verified.or(form).or_else(|| account.map(str::to_owned))
}

/// A tenant, its widget key and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub widget_key: String,
    pub settings: TenantSettings,
    pub created_at: Timestamp,
    pub version: u64,
    pub position: u64,
}

/// The users and tenants read model's port.
#[async_trait]
pub trait UserStore: ReadModel {
    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<UserRecord>, StoreError>;
    /// The user who registered with this e-mail address (compared in lower
    /// case) in this tenant; the first one if several did. Erased users have
    /// no address and are never found.
    async fn find_by_email(&self, tenant: &TenantId, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// A tenant's users in id order, after `after`, at most `limit` (≤ [`MAX_USERS`]).
    async fn users(
        &self,
        tenant: &TenantId,
        role: Option<Role>,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<UserRecord>, StoreError>;
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, StoreError>;
    async fn find_tenant_by_widget_key(&self, widget_key: &str) -> Result<Option<TenantRecord>, StoreError>;
    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError>;
}

/// The projection that keeps a [`UserStore`] up to date.
pub fn projection(store: Arc<dyn UserStore>, sealer: Sealer) -> Arc<dyn Projection> {
    Arc::new(ReadModelProjection::new(PROJECTION, sealer, store))
}

pub fn interest(kind: AggregateKind, _event_type: &str) -> Interest {
    match kind {
        AggregateKind::User => Interest::Open,
        AggregateKind::Tenant => Interest::Decode,
        _ => Interest::Skip,
    }
}

pub(crate) fn limit(n: usize) -> usize {
    if n == 0 { 50 } else { n.min(MAX_USERS) }
}

fn opened(p: &Option<Personal>, position: u64) -> Result<Option<String>, ProjectionError> {
    match p {
        None | Some(Personal::Erased) => Ok(None),
        Some(Personal::Plain(s)) => Ok(Some(s.clone())),
        Some(Personal::Sealed(_)) => Err(ProjectionError::bad_event(position, "personal data was not opened")),
    }
}

/// Folds a user event into its record. False if the record already reflects it.
pub fn apply_user(record: &mut Option<UserRecord>, e: &Opened, event: &UserEvent) -> Result<bool, ProjectionError> {
    if record.as_ref().is_some_and(|r| r.position >= e.position) {
        return Ok(false);
    }
    match event {
        UserEvent::UserRegistered { tenant, user_id, role, name, email, password_hash } => {
            if record.is_some() {
                return Err(ProjectionError::bad_event(e.position, format!("user {user_id} registered twice")));
            }
            *record = Some(UserRecord {
                id: user_id.clone(),
                tenant: tenant.clone(),
                role: *role,
                name: opened(name, e.position)?,
                email: opened(email, e.position)?.map(|m| m.to_lowercase()),
                password_hash: opened(password_hash, e.position)?,
                erased: false,
                registered_at: e.at,
                version: e.version,
                position: e.position,
                identity: None,
            });
        }
        other => {
            let Some(r) = record.as_mut() else {
                return Err(ProjectionError::bad_event(e.position, format!("an event of user {} before its registration", e.stream.id())));
            };
            match other {
                UserEvent::UserRoleChanged { to, .. } => r.role = *to,
                UserEvent::UserErased => {
                    r.erased = true;
                    r.name = None;
                    r.email = None;
                    r.password_hash = None;
                    r.identity = None;
                }
                UserEvent::CustomerIdentified { external_id, name, email, attributes, verified } => {
                    // Erased (a replay after erasure): nothing to show.
                    if !r.erased && !external_id.as_ref().or(name.as_ref()).is_some_and(Personal::is_erased) {
                        let attributes = match opened(attributes, e.position)? {
                            Some(json) => serde_json::from_str(&json).map_err(|err| ProjectionError::bad_event(e.position, err))?,
                            None => Default::default(),
                        };
                        r.identity = Some(CustomerIdentity {
                            external_id: opened(external_id, e.position)?,
                            name: opened(name, e.position)?,
                            email: opened(email, e.position)?.map(|m| m.to_lowercase()),
                            attributes,
                            verified: *verified,
                        });
                    }
                }
                UserEvent::UserRegistered { .. } | UserEvent::UserSessionsRevoked => {}
            }
            r.version = e.version;
            r.position = e.position;
        }
    }
    Ok(true)
}

/// Folds a tenant event into its record. False if the record already reflects it.
pub fn apply_tenant(record: &mut Option<TenantRecord>, e: &Opened, event: &TenantEvent) -> Result<bool, ProjectionError> {
    if record.as_ref().is_some_and(|r| r.position >= e.position) {
        return Ok(false);
    }
    match event {
        TenantEvent::TenantCreated { tenant, name, widget_key, settings } => {
            if record.is_some() {
                return Err(ProjectionError::bad_event(e.position, format!("tenant {tenant} created twice")));
            }
            *record = Some(TenantRecord {
                id: tenant.clone(),
                name: name.clone(),
                widget_key: widget_key.clone(),
                settings: settings.clone(),
                created_at: e.at,
                version: e.version,
                position: e.position,
            });
        }
        other => {
            let Some(r) = record.as_mut() else {
                return Err(ProjectionError::bad_event(e.position, format!("an event of tenant {} before its creation", e.tenant())));
            };
            match other {
                TenantEvent::TenantSettingsChanged { settings } => r.settings = settings.clone(),
                TenantEvent::WidgetKeyRotated { widget_key } => r.widget_key = widget_key.clone(),
                TenantEvent::TenantCreated { .. } | TenantEvent::IdentitySecretRotated { .. } => {}
            }
            r.version = e.version;
            r.position = e.position;
        }
    }
    Ok(true)
}

pub(crate) fn user_id(e: &Opened) -> Result<UserId, ProjectionError> {
    UserId::parse(e.stream.id()).map_err(|err| ProjectionError::bad_event(e.position, err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Fact;
    use jamuna_domain::StreamId;

    fn ev(position: u64, version: u64, event: UserEvent) -> Opened {
        let t = TenantId::parse("acme").unwrap();
        Opened {
            position,
            stream: StreamId::user(&t, &UserId::parse("u1").unwrap()),
            version,
            at: chrono::Utc::now(),
            fact: Fact::User(event),
        }
    }

    #[test]
    fn erasure_drops_personal_fields_and_replays_change_nothing() {
        let reg = UserEvent::UserRegistered {
            tenant: TenantId::parse("acme").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            role: Role::Agent,
            name: Some(Personal::plain("Ada")),
            email: Some(Personal::plain("Ada@Example.com")),
            password_hash: Some(Personal::plain("$argon2id$x")),
        };
        let mut r = None;
        let e1 = ev(3, 1, reg.clone());
        assert!(apply_user(&mut r, &e1, &reg).unwrap());
        assert_eq!(r.as_ref().unwrap().email.as_deref(), Some("ada@example.com"));
        assert!(!apply_user(&mut r, &e1, &reg).unwrap());
        let e2 = ev(9, 2, UserEvent::UserErased);
        assert!(apply_user(&mut r, &e2, &UserEvent::UserErased).unwrap());
        let r = r.unwrap();
        assert!(r.erased && r.name.is_none() && r.email.is_none() && r.password_hash.is_none());
        assert_eq!((r.version, r.position), (2, 9));
    }

    #[test]
    fn an_event_before_registration_is_a_bad_event() {
        let mut r = None;
        assert!(matches!(
            apply_user(&mut r, &ev(1, 1, UserEvent::UserErased), &UserEvent::UserErased),
            Err(ProjectionError::BadEvent { .. })
        ));
    }
}
