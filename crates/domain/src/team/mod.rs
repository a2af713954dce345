//! A tenant's teams of agents: who works which conversations.
//!
//! All of a tenant's teams are one aggregate, in one stream
//! (`<tenant>.team.teams`): a tenant has a handful of teams, listing them
//! is loading one small stream (no read model), and a rule across teams —
//! no two teams with the same name — is decided on one state.
//!
//! Its rules, each enforced in [`Teams::decide`]:
//!
//! * a team name is trimmed, 1 to 60 characters, no control characters, and
//!   unique within the tenant (case-insensitive);
//! * only agents and admins of the team's tenant are members (the caller looks the
//!   user up and passes what it found: [`Member`]);
//! * adding a member twice, removing a non-member, renaming to the same
//!   name produce no event (a retry is safe);
//! * a removed team is gone: commands naming it are refused with
//!   [`TeamError::NotFound`]; its id is never reused.

use crate::user::Role;
use crate::{Aggregate, AggregateKind, DomainEvent, Personal, TeamId, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The longest team name, in characters.
pub const MAX_TEAM_NAME: usize = 60;

/// A user to add to a team, as the caller looked them up.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: UserId,
    pub tenant: TenantId,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TeamCommand {
    Create { tenant: TenantId, team: TeamId, name: String },
    Rename { team: TeamId, name: String },
    AddMember { team: TeamId, member: Member },
    RemoveMember { team: TeamId, user: UserId },
    Remove { team: TeamId },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TeamEvent {
    TeamCreated { team: TeamId, tenant: TenantId, name: String },
    TeamRenamed { team: TeamId, name: String },
    TeamMemberAdded { team: TeamId, user: UserId },
    TeamMemberRemoved { team: TeamId, user: UserId },
    TeamRemoved { team: TeamId },
}

impl DomainEvent for TeamEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::TeamCreated { .. } => "TeamCreated",
            Self::TeamRenamed { .. } => "TeamRenamed",
            Self::TeamMemberAdded { .. } => "TeamMemberAdded",
            Self::TeamMemberRemoved { .. } => "TeamMemberRemoved",
            Self::TeamRemoved { .. } => "TeamRemoved",
        }
    }

    /// Team names and member ids are the company's organisation, not a person's data.
    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        vec![]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeamError {
    #[error("there is no such team")]
    NotFound,
    #[error("a team with this id already exists")]
    AlreadyExists,
    #[error("a team name has 1 to {MAX_TEAM_NAME} characters and no control characters")]
    InvalidName,
    #[error("another team already has this name")]
    NameTaken,
    #[error("only agents and admins can be members of a team")]
    NotAnAgent,
    #[error("the user belongs to another tenant")]
    OtherTenant,
}

impl crate::ErrorCode for TeamError {
    fn code(&self) -> &'static str {
        match self {
            TeamError::NotFound => "team_not_found",
            TeamError::AlreadyExists => "team_exists",
            TeamError::InvalidName => "invalid_team_name",
            TeamError::NameTaken => "team_name_taken",
            TeamError::NotAnAgent => "not_an_agent",
            TeamError::OtherTenant => "other_tenant",
        }
    }
}

/// One team, as the state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    pub id: TeamId,
    pub tenant: TenantId,
    pub name: String,
    /// Sorted by id.
    pub members: BTreeSet<UserId>,
}

/// Every team of a tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Teams {
    version: u64,
    teams: BTreeMap<TeamId, Team>,
    /// Ids of removed teams: never reused.
    removed: BTreeSet<TeamId>,
}

impl Teams {
    pub fn get(&self, id: &TeamId) -> Option<&Team> {
        self.teams.get(id)
    }
    /// The teams, by id.
    pub fn all(&self) -> impl Iterator<Item = &Team> {
        self.teams.values()
    }
    /// The teams `user` is a member of.
    pub fn of_member<'a>(&'a self, user: &'a UserId) -> impl Iterator<Item = &'a Team> {
        self.teams.values().filter(move |t| t.members.contains(user))
    }

    fn existing(&self, id: &TeamId) -> Result<&Team, TeamError> {
        self.teams.get(id).ok_or(TeamError::NotFound)
    }

    /// The name, trimmed and checked, unless another team has it.
    fn check_name(&self, name: &str, except: Option<&TeamId>) -> Result<String, TeamError> {
        let name = name.trim();
        let n = name.chars().count();
        if n == 0 || n > MAX_TEAM_NAME || name.chars().any(char::is_control) {
            return Err(TeamError::InvalidName);
        }
        let lower = name.to_lowercase();
        if self.teams.values().any(|t| Some(&t.id) != except && t.name.to_lowercase() == lower) {
            return Err(TeamError::NameTaken);
        }
        Ok(name.to_owned())
    }
}

impl Aggregate for Teams {
    const KIND: AggregateKind = AggregateKind::Team;
    type Command = TeamCommand;
    type Event = TeamEvent;
    type Error = TeamError;

    fn decide(&self, command: &TeamCommand, _now: Timestamp) -> Result<Vec<TeamEvent>, TeamError> {
        use TeamCommand as C;
        use TeamEvent as V;
        match command {
            C::Create { tenant, team, name } => {
                if self.teams.contains_key(team) || self.removed.contains(team) {
                    return Err(TeamError::AlreadyExists);
                }
                let name = self.check_name(name, None)?;
                Ok(vec![V::TeamCreated { team: team.clone(), tenant: tenant.clone(), name }])
            }
            C::Rename { team, name } => {
                let current = self.existing(team)?;
                let name = self.check_name(name, Some(team))?;
                if current.name == name {
                    return Ok(vec![]);
                }
                Ok(vec![V::TeamRenamed { team: team.clone(), name }])
            }
            C::AddMember { team, member } => {
                let current = self.existing(team)?;
                if member.tenant != current.tenant {
                    return Err(TeamError::OtherTenant);
                }
                if !matches!(member.role, Role::Agent | Role::Admin) {
                    return Err(TeamError::NotAnAgent);
                }
                if current.members.contains(&member.id) {
                    return Ok(vec![]);
                }
                Ok(vec![V::TeamMemberAdded { team: team.clone(), user: member.id.clone() }])
            }
            C::RemoveMember { team, user } => {
                let current = self.existing(team)?;
                if !current.members.contains(user) {
                    return Ok(vec![]);
                }
                Ok(vec![V::TeamMemberRemoved { team: team.clone(), user: user.clone() }])
            }
            C::Remove { team } => {
                self.existing(team)?;
                Ok(vec![V::TeamRemoved { team: team.clone() }])
            }
        }
    }

    fn apply(&mut self, event: &TeamEvent) {
        use TeamEvent as V;
        self.version += 1;
        match event {
            V::TeamCreated { team, tenant, name } => {
                let t = Team { id: team.clone(), tenant: tenant.clone(), name: name.clone(), members: BTreeSet::new() };
                self.teams.insert(team.clone(), t);
            }
            V::TeamRenamed { team, name } => {
                if let Some(t) = self.teams.get_mut(team) {
                    t.name = name.clone();
                }
            }
            V::TeamMemberAdded { team, user } => {
                if let Some(t) = self.teams.get_mut(team) {
                    t.members.insert(user.clone());
                }
            }
            V::TeamMemberRemoved { team, user } => {
                if let Some(t) = self.teams.get_mut(team) {
                    t.members.remove(user);
                }
            }
            V::TeamRemoved { team } => {
                self.teams.remove(team);
                self.removed.insert(team.clone());
            }
        }
    }

    fn data_subject(&self, _event: &TeamEvent) -> Option<UserId> {
        None
    }

    fn version(&self) -> u64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }
    fn team(s: &str) -> TeamId {
        TeamId::parse(s).unwrap()
    }
    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }
    fn created(id: &str, name: &str) -> TeamEvent {
        TeamEvent::TeamCreated { team: team(id), tenant: acme(), name: name.into() }
    }
    fn member(id: &str, role: Role) -> Member {
        Member { id: user(id), tenant: acme(), role }
    }

    #[test]
    fn a_team_is_created_with_a_trimmed_unique_name() {
        given::<Teams>([])
            .when(TeamCommand::Create { tenant: acme(), team: team("t1"), name: "  Billing ".into() })
            .then(vec![created("t1", "Billing")]);
        given::<Teams>([created("t1", "Billing")])
            .when(TeamCommand::Create { tenant: acme(), team: team("t2"), name: "billing".into() })
            .then_err(TeamError::NameTaken);
        given::<Teams>([created("t1", "Billing")])
            .when(TeamCommand::Create { tenant: acme(), team: team("t1"), name: "Other".into() })
            .then_err(TeamError::AlreadyExists);
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(MAX_TEAM_NAME + 1)] {
            given::<Teams>([])
                .when(TeamCommand::Create { tenant: acme(), team: team("t1"), name: bad.into() })
                .then_err(TeamError::InvalidName);
        }
    }

    #[test]
    fn a_team_is_renamed_unless_the_name_is_taken() {
        let state = given::<Teams>([created("t1", "Billing"), created("t2", "Cards")])
            .when(TeamCommand::Rename { team: team("t1"), name: "Payments".into() })
            .then(vec![TeamEvent::TeamRenamed { team: team("t1"), name: "Payments".into() }]);
        assert_eq!(state.get(&team("t1")).map(|t| t.name.as_str()), Some("Payments"));
        given::<Teams>([created("t1", "Billing"), created("t2", "Cards")])
            .when(TeamCommand::Rename { team: team("t1"), name: "CARDS".into() })
            .then_err(TeamError::NameTaken);
        given::<Teams>([created("t1", "Billing")]).when(TeamCommand::Rename { team: team("t1"), name: "Billing".into() }).then_nothing();
        given::<Teams>([created("t1", "Billing")])
            .when(TeamCommand::Rename { team: team("t1"), name: "billing".into() })
            .then(vec![TeamEvent::TeamRenamed { team: team("t1"), name: "billing".into() }]);
        given::<Teams>([]).when(TeamCommand::Rename { team: team("t1"), name: "X".into() }).then_err(TeamError::NotFound);
    }

    #[test]
    fn agents_and_admins_are_members_once() {
        let state = given::<Teams>([created("t1", "Billing")])
            .when(TeamCommand::AddMember { team: team("t1"), member: member("ann", Role::Agent) })
            .then(vec![TeamEvent::TeamMemberAdded { team: team("t1"), user: user("ann") }]);
        assert_eq!(state.of_member(&user("ann")).count(), 1);
        let added = TeamEvent::TeamMemberAdded { team: team("t1"), user: user("ann") };
        given::<Teams>([created("t1", "Billing"), added.clone()])
            .when(TeamCommand::AddMember { team: team("t1"), member: member("ann", Role::Agent) })
            .then_nothing();
        given::<Teams>([created("t1", "Billing")])
            .when(TeamCommand::AddMember { team: team("t1"), member: member("bob", Role::Admin) })
            .then(vec![TeamEvent::TeamMemberAdded { team: team("t1"), user: user("bob") }]);
        given::<Teams>([created("t1", "Billing")])
            .when(TeamCommand::AddMember { team: team("t1"), member: member("cus", Role::Customer) })
            .then_err(TeamError::NotAnAgent);
        given::<Teams>([])
            .when(TeamCommand::AddMember { team: team("t1"), member: member("ann", Role::Agent) })
            .then_err(TeamError::NotFound);
        let state = given::<Teams>([created("t1", "Billing"), added])
            .when(TeamCommand::RemoveMember { team: team("t1"), user: user("ann") })
            .then(vec![TeamEvent::TeamMemberRemoved { team: team("t1"), user: user("ann") }]);
        assert!(state.get(&team("t1")).is_some_and(|t| t.members.is_empty()));
        given::<Teams>([created("t1", "Billing")]).when(TeamCommand::RemoveMember { team: team("t1"), user: user("ann") }).then_nothing();
    }

    #[test]
    fn a_removed_team_is_gone_and_its_id_is_not_reused() {
        let state = given::<Teams>([created("t1", "Billing")])
            .when(TeamCommand::Remove { team: team("t1") })
            .then(vec![TeamEvent::TeamRemoved { team: team("t1") }]);
        assert_eq!(state.all().count(), 0);
        let gone = [created("t1", "Billing"), TeamEvent::TeamRemoved { team: team("t1") }];
        given::<Teams>(gone.clone()).when(TeamCommand::Remove { team: team("t1") }).then_err(TeamError::NotFound);
        given::<Teams>(gone.clone())
            .when(TeamCommand::Create { tenant: acme(), team: team("t1"), name: "Again".into() })
            .then_err(TeamError::AlreadyExists);
        given::<Teams>(gone)
            .when(TeamCommand::Create { tenant: acme(), team: team("t2"), name: "Billing".into() })
            .then(vec![created("t2", "Billing")]);
    }

    #[test]
    fn a_member_of_another_tenant_is_refused() {
        let stranger = Member { id: user("eve"), tenant: TenantId::parse("other").unwrap(), role: Role::Agent };
        given::<Teams>([created("t1", "Billing")])
            .when(TeamCommand::AddMember { team: team("t1"), member: stranger })
            .then_err(TeamError::OtherTenant);
    }
}
