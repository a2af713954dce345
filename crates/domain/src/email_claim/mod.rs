//! An e-mail address claimed by one user of a tenant.
//!
//! A user's id is random, so nothing about it follows from their address, and
//! erasing the user leaves nothing in the log that an address leads back to.
//! What keeps an address to one user per tenant is this small aggregate: its
//! stream id is a *keyed* hash of tenant and address (the key lives in the key
//! store, outside the log, so the log alone cannot be searched by address),
//! and it refuses a second claim while one holds.
//!
//! Who holds a claim is personal data, sealed under a key of the claim's own
//! (a random `subject`, not the user's id: the envelope names a sealed event's
//! subject in plain text). Releasing the claim — when its user is erased —
//! ends it, the write side deletes that key, and the old claim no longer says
//! whose it was. The address can then be claimed again, by a new user with a
//! new, unrelated id.

use crate::{Aggregate, AggregateKind, DomainEvent, Personal, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub enum EmailClaimCommand {
    /// Claims the address for `user`. `subject` is a new random id whose key
    /// seals the holder (made by the caller: the domain has no randomness).
    Claim { user: UserId, subject: UserId },
    /// Ends the claim made under `subject`; nothing to do if that claim is
    /// not the current one (released before, or never made).
    Release { subject: UserId },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EmailClaimEvent {
    /// The address is taken by `user` (sealed under `subject`'s key).
    EmailClaimed { subject: UserId, user: Personal },
    /// The claim made under `subject` ended: the address is free again.
    EmailReleased { subject: UserId },
}

impl DomainEvent for EmailClaimEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::EmailClaimed { .. } => "EmailClaimed",
            Self::EmailReleased { .. } => "EmailReleased",
        }
    }

    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        match self {
            Self::EmailClaimed { user, .. } => vec![user],
            Self::EmailReleased { .. } => vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailClaimError {
    #[error("the e-mail address is registered")]
    AlreadyClaimed,
}

impl crate::ErrorCode for EmailClaimError {
    fn code(&self) -> &'static str {
        match self {
            // The same code a second registration of a user has always had.
            EmailClaimError::AlreadyClaimed => "already_registered",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmailClaim {
    version: u64,
    /// The subject of the claim that holds, if one does.
    current: Option<UserId>,
}

impl EmailClaim {
    /// The subject whose key seals the current holder, if the address is claimed.
    pub fn current(&self) -> Option<&UserId> {
        self.current.as_ref()
    }
}

impl Aggregate for EmailClaim {
    const KIND: AggregateKind = AggregateKind::EmailClaim;
    type Command = EmailClaimCommand;
    type Event = EmailClaimEvent;
    type Error = EmailClaimError;

    fn decide(&self, command: &EmailClaimCommand, _now: Timestamp) -> Result<Vec<EmailClaimEvent>, EmailClaimError> {
        match command {
            EmailClaimCommand::Claim { user, subject } => {
                if self.current.is_some() {
                    return Err(EmailClaimError::AlreadyClaimed);
                }
                Ok(vec![EmailClaimEvent::EmailClaimed { subject: subject.clone(), user: Personal::plain(user.as_str()) }])
            }
            EmailClaimCommand::Release { subject } => {
                if self.current.as_ref() != Some(subject) {
                    return Ok(vec![]);
                }
                Ok(vec![EmailClaimEvent::EmailReleased { subject: subject.clone() }])
            }
        }
    }

    fn apply(&mut self, event: &EmailClaimEvent) {
        self.version += 1;
        match event {
            EmailClaimEvent::EmailClaimed { subject, .. } => self.current = Some(subject.clone()),
            EmailClaimEvent::EmailReleased { .. } => self.current = None,
        }
    }

    /// The claim's own subject, never the user: see the module docs.
    fn data_subject(&self, event: &EmailClaimEvent) -> Option<UserId> {
        match event {
            EmailClaimEvent::EmailClaimed { subject, .. } => Some(subject.clone()),
            EmailClaimEvent::EmailReleased { .. } => None,
        }
    }

    fn version(&self) -> u64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn id(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn claimed(user: &str, subject: &str) -> EmailClaimEvent {
        EmailClaimEvent::EmailClaimed { subject: id(subject), user: Personal::plain(user) }
    }

    fn claim(user: &str, subject: &str) -> EmailClaimCommand {
        EmailClaimCommand::Claim { user: id(user), subject: id(subject) }
    }

    fn release(subject: &str) -> EmailClaimCommand {
        EmailClaimCommand::Release { subject: id(subject) }
    }

    #[test]
    fn an_address_is_claimed_once() {
        let state = given::<EmailClaim>([]).when(claim("u1", "s1")).then(vec![claimed("u1", "s1")]);
        assert_eq!(state.current(), Some(&id("s1")));
        given::<EmailClaim>([claimed("u1", "s1")]).when(claim("u2", "s2")).then_err(EmailClaimError::AlreadyClaimed);
        given::<EmailClaim>([claimed("u1", "s1")]).when(claim("u1", "s2")).then_err(EmailClaimError::AlreadyClaimed);
    }

    #[test]
    fn a_released_address_is_claimed_again_by_someone_new() {
        let released = EmailClaimEvent::EmailReleased { subject: id("s1") };
        let state = given::<EmailClaim>([claimed("u1", "s1")]).when(release("s1")).then(vec![released.clone()]);
        assert_eq!(state.current(), None);
        given::<EmailClaim>([claimed("u1", "s1"), released]).when(claim("u2", "s2")).then(vec![claimed("u2", "s2")]);
    }

    #[test]
    fn releasing_is_idempotent_and_touches_only_its_own_claim() {
        let released = EmailClaimEvent::EmailReleased { subject: id("s1") };
        given::<EmailClaim>([]).when(release("s1")).then_nothing();
        given::<EmailClaim>([claimed("u1", "s1"), released.clone()]).when(release("s1")).then_nothing();
        // A late retry of an old release leaves the new holder's claim alone.
        given::<EmailClaim>([claimed("u1", "s1"), released, claimed("u2", "s2")]).when(release("s1")).then_nothing();
    }

    #[test]
    fn the_holder_is_sealed_under_the_claims_subject_not_the_users() {
        let mut e = claimed("u1", "s1");
        assert_eq!(e.personal_fields_mut().len(), 1);
        let state = EmailClaim::default();
        assert_eq!(state.data_subject(&e), Some(id("s1")));
        assert_eq!(state.data_subject(&EmailClaimEvent::EmailReleased { subject: id("s1") }), None);
    }
}
