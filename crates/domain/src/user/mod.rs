//! Users: customers (with an account, or anonymous visitors of a tenant's
//! website), agents and admins. Each belongs to exactly one tenant.
//!
//! A user's name, e-mail address and password hash are personal data, sealed
//! with the user's own key; erasing the user deletes that key.
//!
//! A user's id is random (UUID v7, made by the caller), so nothing about it
//! follows from their address: one address per tenant is kept by the
//! address's [`crate::email_claim`], claimed before the user registers and
//! released when they are erased. An erased user stays erased; their address
//! registers again as a new user with a new id.
//!
//! A customer may also say who they are: the tenant's website vouches for a
//! signed-in customer with a signature of their id (verified), or a visitor
//! fills in the widget's pre-chat form (unverified). Both are
//! [`UserEvent::CustomerIdentified`], personal data sealed like the rest; a
//! verified identity is never replaced by an unverified one. (Users registered before
//! claims existed have ids derived from tenant and address; ids are opaque,
//! so they keep them.)

use crate::{Aggregate, AggregateKind, DomainEvent, Personal, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most custom attributes an identity carries.
pub const MAX_ATTRIBUTES: usize = 30;
/// The longest attribute name, and the longest value, in characters.
pub const MAX_ATTRIBUTE_NAME: usize = 50;
pub const MAX_ATTRIBUTE_VALUE: usize = 500;
/// The longest external id (the host site's own id of its customer).
pub const MAX_EXTERNAL_ID: usize = 255;

/// Who a customer says they are (the commands' plain form).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerDetails {
    /// The host site's id of the customer: required for a verified identity.
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<Email>,
    /// Custom attributes (`plan: pro`), shown to staff as given.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Agent,
    Admin,
}

impl Role {
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }
}

/// An e-mail address, lower-cased, checked for a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid e-mail address")]
pub struct EmailError;

impl Email {
    pub fn parse(s: &str) -> Result<Self, EmailError> {
        let s = s.trim().to_lowercase();
        let (local, domain) = s.split_once('@').ok_or(EmailError)?;
        let ok = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@');
        if ok { Ok(Self(s)) } else { Err(EmailError) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register {
        tenant: TenantId,
        user_id: UserId,
        role: Role,
        name: Option<String>,
        email: Option<Email>,
        /// An argon2id PHC string, made by the caller (never a password).
        password_hash: Option<String>,
    },
    ChangeRole {
        role: Role,
    },
    Erase,
    /// Sign out everywhere: every access token and socket of the user ends.
    RevokeSessions,
    /// Records who a customer is: `verified` when the tenant's website
    /// signed their external id, else details from the pre-chat form.
    Identify {
        details: CustomerDetails,
        verified: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UserEvent {
    UserRegistered {
        tenant: TenantId,
        user_id: UserId,
        role: Role,
        name: Option<Personal>,
        email: Option<Personal>,
        password_hash: Option<Personal>,
    },
    UserRoleChanged {
        from: Role,
        to: Role,
    },
    UserErased,
    /// The user signed out everywhere: their tokens issued before this are void.
    UserSessionsRevoked,
    /// A customer's identity: signed by the tenant's website (`verified`) or
    /// given in the pre-chat form. `attributes` is a JSON object of strings.
    CustomerIdentified {
        external_id: Option<Personal>,
        name: Option<Personal>,
        email: Option<Personal>,
        attributes: Option<Personal>,
        verified: bool,
    },
}

/// Does an event of this type end the user's sessions (their access tokens
/// and open sockets)? Every user event but the registration does.
pub fn ends_sessions(event_type: &str) -> bool {
    matches!(event_type, "UserRoleChanged" | "UserErased" | "UserSessionsRevoked")
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::UserRegistered { .. } => "UserRegistered",
            Self::UserRoleChanged { .. } => "UserRoleChanged",
            Self::UserErased => "UserErased",
            Self::UserSessionsRevoked => "UserSessionsRevoked",
            Self::CustomerIdentified { .. } => "CustomerIdentified",
        }
    }

    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        match self {
            Self::UserRegistered { name, email, password_hash, .. } => {
                [name, email, password_hash].into_iter().filter_map(Option::as_mut).collect()
            }
            Self::CustomerIdentified { external_id, name, email, attributes, .. } => {
                [external_id, name, email, attributes].into_iter().filter_map(Option::as_mut).collect()
            }
            _ => vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("the user is already registered")]
    AlreadyRegistered,
    #[error("the user is not registered")]
    NotRegistered,
    #[error("the user has been erased")]
    Erased,
    #[error("a name may hold at most 200 characters")]
    NameTooLong,
    #[error("only customers are identified")]
    NotACustomer,
    #[error("a verified identity needs an external id of 1 to {MAX_EXTERNAL_ID} characters")]
    InvalidExternalId,
    #[error("at most {MAX_ATTRIBUTES} attributes, names of 1 to {MAX_ATTRIBUTE_NAME} characters, values of at most {MAX_ATTRIBUTE_VALUE}")]
    InvalidAttributes,
}

impl crate::ErrorCode for UserError {
    fn code(&self) -> &'static str {
        match self {
            UserError::AlreadyRegistered => "already_registered",
            UserError::NotRegistered => "not_registered",
            UserError::Erased => "erased",
            UserError::NameTooLong => "name_too_long",
            UserError::NotACustomer => "not_a_customer",
            UserError::InvalidExternalId => "invalid_external_id",
            UserError::InvalidAttributes => "invalid_attributes",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    version: u64,
    id: Option<UserId>,
    tenant: Option<TenantId>,
    role: Option<Role>,
    erased: bool,
    verified: bool,
}

impl User {
    /// Has the tenant's website vouched for who this customer is?
    pub fn is_verified(&self) -> bool {
        self.verified
    }
    pub fn role(&self) -> Option<Role> {
        self.role
    }
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }
    pub fn is_erased(&self) -> bool {
        self.erased
    }
    fn registered(&self) -> Result<Role, UserError> {
        match (self.role, self.erased) {
            (_, true) => Err(UserError::Erased),
            (None, _) => Err(UserError::NotRegistered),
            (Some(r), false) => Ok(r),
        }
    }
}

impl Aggregate for User {
    const KIND: AggregateKind = AggregateKind::User;
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn decide(&self, command: &UserCommand, _now: Timestamp) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::Register { tenant, user_id, role, name, email, password_hash } => {
                if self.erased {
                    return Err(UserError::Erased);
                }
                if self.role.is_some() {
                    return Err(UserError::AlreadyRegistered);
                }
                let name = name.as_deref().map(str::trim).filter(|n| !n.is_empty());
                if name.is_some_and(|n| n.chars().count() > 200) {
                    return Err(UserError::NameTooLong);
                }
                Ok(vec![UserEvent::UserRegistered {
                    tenant: tenant.clone(),
                    user_id: user_id.clone(),
                    role: *role,
                    name: name.map(Personal::plain),
                    email: email.as_ref().map(|e| Personal::plain(e.as_str())),
                    password_hash: password_hash.clone().map(Personal::Plain),
                }])
            }
            UserCommand::ChangeRole { role } => {
                let from = self.registered()?;
                if from == *role {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserRoleChanged { from, to: *role }])
            }
            UserCommand::Erase => {
                self.registered()?;
                Ok(vec![UserEvent::UserErased])
            }
            UserCommand::RevokeSessions => {
                self.registered()?;
                Ok(vec![UserEvent::UserSessionsRevoked])
            }
            UserCommand::Identify { details, verified } => identify(self.registered()?, self.verified, details, *verified),
        }
    }

    fn apply(&mut self, event: &UserEvent) {
        self.version += 1;
        match event {
            UserEvent::UserRegistered { tenant, user_id, role, .. } => {
                self.id = Some(user_id.clone());
                self.tenant = Some(tenant.clone());
                self.role = Some(*role);
            }
            UserEvent::UserRoleChanged { to, .. } => self.role = Some(*to),
            UserEvent::UserErased => self.erased = true,
            UserEvent::UserSessionsRevoked => {}
            UserEvent::CustomerIdentified { verified, .. } => self.verified |= verified,
        }
    }

    fn data_subject(&self, event: &UserEvent) -> Option<UserId> {
        match event {
            UserEvent::UserRegistered { user_id, .. } => Some(user_id.clone()),
            _ => self.id.clone(),
        }
    }

    fn version(&self) -> u64 {
        self.version
    }
}

fn identify(role: Role, already_verified: bool, d: &CustomerDetails, verified: bool) -> Result<Vec<UserEvent>, UserError> {
    if role != Role::Customer {
        return Err(UserError::NotACustomer);
    }
    let clean = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let external_id = clean(&d.external_id);
    if external_id.as_ref().is_some_and(|x| x.chars().count() > MAX_EXTERNAL_ID || x.chars().any(char::is_control))
        || (verified && external_id.is_none())
    {
        return Err(UserError::InvalidExternalId);
    }
    let name = clean(&d.name);
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(UserError::NameTooLong);
    }
    let bad_attribute = |(k, v): (&String, &String)| {
        k.trim().is_empty() || k.chars().count() > MAX_ATTRIBUTE_NAME || v.chars().count() > MAX_ATTRIBUTE_VALUE
    };
    if d.attributes.len() > MAX_ATTRIBUTES || d.attributes.iter().any(bad_attribute) {
        return Err(UserError::InvalidAttributes);
    }
    // What the customer's own website vouched for outranks a form.
    if already_verified && !verified {
        return Ok(vec![]);
    }
    let attributes = (!d.attributes.is_empty())
        .then(|| serde_json::to_string(&d.attributes).map(Personal::Plain))
        .transpose()
        .map_err(|_| UserError::InvalidAttributes)?;
    Ok(vec![UserEvent::CustomerIdentified {
        external_id: external_id.map(Personal::Plain),
        name: name.map(Personal::Plain),
        email: d.email.as_ref().map(|e| Personal::plain(e.as_str())),
        attributes,
        verified,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn registered(role: Role) -> UserEvent {
        UserEvent::UserRegistered {
            tenant: TenantId::parse("acme").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            role,
            name: Some(Personal::plain("Ada")),
            email: Some(Personal::plain("ada@example.com")),
            password_hash: None,
        }
    }

    fn register(role: Role) -> UserCommand {
        UserCommand::Register {
            tenant: TenantId::parse("acme").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            role,
            name: Some("  Ada ".into()),
            email: Some(Email::parse("Ada@Example.com").unwrap()),
            password_hash: None,
        }
    }

    #[test]
    fn a_user_registers_once() {
        given::<User>([]).when(register(Role::Agent)).then(vec![registered(Role::Agent)]);
        given::<User>([registered(Role::Agent)]).when(register(Role::Agent)).then_err(UserError::AlreadyRegistered);
    }

    #[test]
    fn roles_change_and_an_unchanged_role_is_a_no_op() {
        given::<User>([registered(Role::Agent)])
            .when(UserCommand::ChangeRole { role: Role::Admin })
            .then(vec![UserEvent::UserRoleChanged { from: Role::Agent, to: Role::Admin }]);
        given::<User>([registered(Role::Agent)]).when(UserCommand::ChangeRole { role: Role::Agent }).then_nothing();
        given::<User>([]).when(UserCommand::ChangeRole { role: Role::Agent }).then_err(UserError::NotRegistered);
    }

    #[test]
    fn an_erased_user_stays_erased() {
        let state = given::<User>([registered(Role::Customer)]).when(UserCommand::Erase).then(vec![UserEvent::UserErased]);
        assert!(state.is_erased());
        given::<User>([registered(Role::Customer), UserEvent::UserErased]).when(UserCommand::Erase).then_err(UserError::Erased);
        given::<User>([registered(Role::Customer), UserEvent::UserErased]).when(register(Role::Customer)).then_err(UserError::Erased);
    }

    #[test]
    fn signing_out_everywhere_needs_a_live_user() {
        given::<User>([registered(Role::Agent)]).when(UserCommand::RevokeSessions).then(vec![UserEvent::UserSessionsRevoked]);
        given::<User>([]).when(UserCommand::RevokeSessions).then_err(UserError::NotRegistered);
        given::<User>([registered(Role::Agent), UserEvent::UserErased]).when(UserCommand::RevokeSessions).then_err(UserError::Erased);
    }

    #[test]
    fn every_user_event_but_registration_ends_sessions() {
        let events = [
            registered(Role::Agent),
            UserEvent::UserRoleChanged { from: Role::Agent, to: Role::Customer },
            UserEvent::UserErased,
            UserEvent::UserSessionsRevoked,
            identified(true),
        ];
        let ending: Vec<bool> = events.iter().map(|e| ends_sessions(e.event_type())).collect();
        assert_eq!(ending, [false, true, true, true, false], "an identity does not end the sessions it was given in");
    }

    fn details() -> CustomerDetails {
        CustomerDetails {
            external_id: Some(" cust-42 ".into()),
            name: Some(" Ada Lovelace ".into()),
            email: Some(Email::parse("Ada@Example.com").unwrap()),
            attributes: BTreeMap::from([("plan".into(), "pro".into())]),
        }
    }

    fn identified(verified: bool) -> UserEvent {
        UserEvent::CustomerIdentified {
            external_id: Some(Personal::plain("cust-42")),
            name: Some(Personal::plain("Ada Lovelace")),
            email: Some(Personal::plain("ada@example.com")),
            attributes: Some(Personal::plain(r#"{"plan":"pro"}"#)),
            verified,
        }
    }

    #[test]
    fn a_customer_is_identified_with_sealed_details() {
        let state = given::<User>([registered(Role::Customer)])
            .when(UserCommand::Identify { details: details(), verified: true })
            .then(vec![identified(true)]);
        assert!(state.is_verified());
        let mut e = identified(true);
        assert_eq!(e.personal_fields_mut().len(), 4, "id, name, e-mail and attributes are all personal");
    }

    #[test]
    fn a_pre_chat_form_is_an_unverified_identity_that_never_replaces_a_verified_one() {
        let form = CustomerDetails { external_id: None, attributes: BTreeMap::new(), ..details() };
        let state = given::<User>([registered(Role::Customer)])
            .when(UserCommand::Identify { details: form.clone(), verified: false })
            .then(vec![UserEvent::CustomerIdentified {
                external_id: None,
                name: Some(Personal::plain("Ada Lovelace")),
                email: Some(Personal::plain("ada@example.com")),
                attributes: None,
                verified: false,
            }]);
        assert!(!state.is_verified());
        given::<User>([registered(Role::Customer), identified(true)])
            .when(UserCommand::Identify { details: form, verified: false })
            .then_nothing();
        // The website may update what it vouched for.
        given::<User>([registered(Role::Customer), identified(true)])
            .when(UserCommand::Identify { details: details(), verified: true })
            .then(vec![identified(true)]);
    }

    #[test]
    fn an_identity_is_refused_when_it_is_malformed_or_not_a_customers() {
        let id = |verified, d| UserCommand::Identify { details: d, verified };
        given::<User>([registered(Role::Agent)]).when(id(true, details())).then_err(UserError::NotACustomer);
        given::<User>([]).when(id(true, details())).then_err(UserError::NotRegistered);
        given::<User>([registered(Role::Customer), UserEvent::UserErased]).when(id(true, details())).then_err(UserError::Erased);
        for external_id in [None, Some("  ".to_owned()), Some("x".repeat(MAX_EXTERNAL_ID + 1)), Some("a\u{7}b".to_owned())] {
            given::<User>([registered(Role::Customer)])
                .when(id(true, CustomerDetails { external_id, ..details() }))
                .then_err(UserError::InvalidExternalId);
        }
        given::<User>([registered(Role::Customer)])
            .when(id(true, CustomerDetails { name: Some("n".repeat(201)), ..details() }))
            .then_err(UserError::NameTooLong);
        let many: BTreeMap<String, String> = (0..=MAX_ATTRIBUTES).map(|i| (format!("k{i}"), "v".into())).collect();
        for attributes in [many, BTreeMap::from([(" ".into(), "v".into())]), BTreeMap::from([("k".into(), "v".repeat(501))])] {
            given::<User>([registered(Role::Customer)])
                .when(id(true, CustomerDetails { attributes, ..details() }))
                .then_err(UserError::InvalidAttributes);
        }
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(Email::parse(" A@B.io ").unwrap().as_str(), "a@b.io");
        for bad in ["", "a", "a@b", "@b.io", "a@.io", "a b@c.io", "a@b@c.io"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn personal_fields_are_all_listed() {
        let mut e = registered(Role::Customer);
        assert_eq!(e.personal_fields_mut().len(), 2);
    }
}
