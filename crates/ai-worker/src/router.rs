//! # The router: who takes a conversation that waits for a human
//!
//! A log consumer that gives each conversation waiting for a human (pending,
//! nobody assigned) to an online agent, in turn, and takes conversations
//! from an agent who has been offline too long.
//!
//! * **Who is a candidate.** For a conversation given to a team: the team's
//!   members who are online now (presence: a dashboard socket open). For one
//!   given to no team (or to a team since removed): every online member of
//!   staff of the tenant. A tenant turns routing on by creating its first
//!   team: until then its handoffs wait in the inbox for someone to take
//!   them, as they always did. An agent already holding
//!   [`RouterConfig::capacity`] open conversations is skipped.
//! * **In turn.** Candidates are taken in the order of their ids, starting
//!   after the agent last assigned a conversation of that team (by anyone),
//!   so every online agent gets one before anyone gets a second.
//! * **Away too long.** An agent seen offline on every tick for
//!   [`RouterConfig::offline_after`] loses their open conversations: each is
//!   unassigned (`AgentUnassigned { by: None }`), waits again, and is routed
//!   like any other.
//!
//! The state ([`Routing`]) is folded from the log on every start: the
//! tenants' teams and members, each conversation's status, team and
//! assignee, and who was assigned last per team. Nothing else is stored,
//! so a restarted router continues where the log says it stands; only the
//! offline timers start again (an agent's absence is measured from the
//! router's own ticks).
//!
//! Its decisions are ordinary commands: [`ConversationCommand::Route`] and
//! [`ConversationCommand::UnassignAbsent`], which the domain applies only
//! if the conversation still stands as the router saw it. A router whose
//! state lags, a retry, or two routers at once (a lease that changed hands)
//! never take a conversation from someone who has it.
//!
//! Replicas share the work by tenant: [`PARTITIONS`] partitions of the
//! tenants ([`tenant_unit`]) leased like the AI worker's (see
//! `jamuna_projections::work_share`), so one replica decides for a tenant
//! and its turn order stays consistent. Every replica folds the whole log
//! (the state is small); it only acts for the tenants it holds.

use jamuna_commands::handler::CommandContext;
use jamuna_commands::{CommandHandler, EventLog, RecordedEvent, seal};
use jamuna_domain::conversation::{Assignee, Author, Conversation, ConversationCommand, ConversationEvent, Status};
use jamuna_domain::team::TeamEvent;
use jamuna_domain::user::Role;
use jamuna_domain::{AggregateKind, ConversationId, StreamId, TeamId, TenantId, UserId};
use jamuna_projections::sessions::PresenceStore;
use jamuna_projections::work_share::{PARTITIONS, WorkShare, partition_of};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The unit of work of tenant partition `p`.
pub fn tenant_unit(p: u32) -> String {
    format!("t{p}")
}

/// Every unit of work of the routers.
pub fn tenant_units() -> Vec<String> {
    (0..PARTITIONS).map(tenant_unit).collect()
}

/// The unit a tenant belongs to.
pub fn unit_of(tenant: &TenantId) -> String {
    tenant_unit(partition_of(tenant.as_str()))
}

#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Open conversations the router gives one agent at most.
    pub capacity: u32,
    /// How long an agent may be offline before their conversations go to
    /// others; `None`: never.
    pub offline_after: Option<Duration>,
    /// How often the router looks at who is online.
    pub tick: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self { capacity: 5, offline_after: Some(Duration::from_secs(300)), tick: Duration::from_secs(1) }
    }
}

/// One conversation as the router sees it.
#[derive(Debug, Clone, PartialEq)]
struct Conv {
    status: Status,
    team: Option<TeamId>,
    assignee: Option<UserId>,
    human: bool,
    /// The log position it started waiting at (oldest first).
    waiting_since: u64,
}

#[derive(Debug, Default, Clone)]
struct TenantState {
    teams: BTreeMap<TeamId, BTreeSet<UserId>>,
    conversations: HashMap<ConversationId, Conv>,
    /// The agent last assigned a conversation of each team (`None`: no team).
    last: HashMap<Option<TeamId>, UserId>,
}

/// What the router decides to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Route { conversation: ConversationId, agent: UserId },
    UnassignAbsent { conversation: ConversationId, agent: UserId },
}

/// The routers' state, folded from the log; pure (time is passed in).
#[derive(Debug, Default)]
pub struct Routing {
    tenants: HashMap<TenantId, TenantState>,
    /// When each agent (with open conversations) was first seen offline.
    offline_since: HashMap<(TenantId, UserId), Instant>,
}

/// Whether the router reads an event at all.
fn wanted(r: &RecordedEvent) -> bool {
    match r.stream.kind() {
        AggregateKind::Team => true,
        AggregateKind::Conversation => matches!(
            r.event_type.as_str(),
            "ConversationStarted"
                | "MessagePosted"
                | "HandoffRequested"
                | "AgentAssigned"
                | "AgentUnassigned"
                | "TeamAssigned"
                | "ConversationResolved"
                | "ConversationReopened"
        ),
        _ => false,
    }
}

impl Routing {
    /// Folds one recorded event (others' kinds and types go by). An event
    /// that does not decode is skipped with a warning: the router's state is
    /// advice, the domain decides.
    pub fn fold(&mut self, r: &RecordedEvent) {
        if !wanted(r) {
            return;
        }
        match r.stream.kind() {
            AggregateKind::Team => match seal::decode::<TeamEvent>(r) {
                Ok(e) => self.fold_team(r.stream.tenant(), &e),
                Err(e) => tracing::warn!(position = r.position, error = %e, "the router skips an event it cannot read"),
            },
            _ => match (seal::decode::<ConversationEvent>(r), ConversationId::parse(r.stream.id())) {
                (Ok(e), Ok(id)) => self.fold_conversation(r.stream.tenant(), &id, r.position, &e),
                _ => tracing::warn!(position = r.position, "the router skips an event it cannot read"),
            },
        }
    }

    pub fn fold_team(&mut self, tenant: &TenantId, e: &TeamEvent) {
        let t = self.tenants.entry(tenant.clone()).or_default();
        match e {
            TeamEvent::TeamCreated { team, .. } => {
                t.teams.entry(team.clone()).or_default();
            }
            TeamEvent::TeamRenamed { .. } => {}
            TeamEvent::TeamMemberAdded { team, user } => {
                t.teams.entry(team.clone()).or_default().insert(user.clone());
            }
            TeamEvent::TeamMemberRemoved { team, user } => {
                if let Some(m) = t.teams.get_mut(team) {
                    m.remove(user);
                }
            }
            TeamEvent::TeamRemoved { team } => {
                t.teams.remove(team);
                if t.teams.is_empty() {
                    // Routing is off again: absences count afresh if it comes back on.
                    self.offline_since.retain(|(tn, _), _| tn != tenant);
                }
            }
        }
    }

    pub fn fold_conversation(&mut self, tenant: &TenantId, id: &ConversationId, position: u64, e: &ConversationEvent) {
        use ConversationEvent as V;
        let t = self.tenants.entry(tenant.clone()).or_default();
        if let V::ConversationStarted { .. } = e {
            let c = Conv { status: Status::Open, team: None, assignee: None, human: false, waiting_since: position };
            t.conversations.entry(id.clone()).or_insert(c);
            return;
        }
        let Some(c) = t.conversations.get_mut(id) else { return };
        let was_waiting = c.status == Status::Pending && c.assignee.is_none();
        match e {
            V::MessagePosted { author: Author::Agent { .. }, .. } => c.human = true,
            V::HandoffRequested { .. } => {
                c.human = true;
                if c.assignee.is_none() {
                    c.status = Status::Pending;
                }
            }
            V::AgentAssigned { agent } => {
                c.human = true;
                c.assignee = Some(agent.clone());
                c.status = Status::Open;
                t.last.insert(c.team.clone(), agent.clone());
            }
            V::AgentUnassigned { .. } => {
                c.assignee = None;
                if c.human && c.status == Status::Open {
                    c.status = Status::Pending;
                }
            }
            V::TeamAssigned { team } => c.team = team.clone(),
            V::ConversationResolved { .. } => c.status = Status::Resolved,
            V::ConversationReopened { .. } => {
                c.status = if c.human && c.assignee.is_none() { Status::Pending } else { Status::Open };
            }
            _ => {}
        }
        if !was_waiting && c.status == Status::Pending && c.assignee.is_none() {
            c.waiting_since = position;
        }
    }

    /// What to do for `tenant` now, with `online` its staff online (sorted).
    /// Remembers when agents went offline, so call it once per tick.
    pub fn decide(&mut self, tenant: &TenantId, online: &[UserId], now: Instant, config: &RouterConfig) -> Vec<Action> {
        let Some(t) = self.tenants.get(tenant) else { return vec![] };
        // A tenant without teams has not turned routing on: nothing is given
        // to anyone, nor taken from anyone away.
        if t.teams.is_empty() {
            return vec![];
        }
        let online: BTreeSet<&UserId> = online.iter().collect();
        let mut actions = Vec::new();
        let mut load: HashMap<&UserId, u32> = HashMap::new();
        for c in t.conversations.values() {
            if let Some(a) = &c.assignee
                && c.status != Status::Resolved
            {
                *load.entry(a).or_default() += 1;
            }
        }
        // Agents away too long lose their open conversations.
        let away: BTreeSet<&UserId> = load.keys().copied().filter(|a| !online.contains(a)).collect();
        self.offline_since.retain(|(tn, a), _| tn != tenant || away.contains(a));
        let mut gone: BTreeSet<UserId> = BTreeSet::new();
        for a in &away {
            let since = *self.offline_since.entry((tenant.clone(), (*a).clone())).or_insert(now);
            if config.offline_after.is_some_and(|after| now.duration_since(since) >= after) {
                gone.insert((*a).clone());
            }
        }
        let mut absent: Vec<(&ConversationId, &UserId)> = t
            .conversations
            .iter()
            .filter(|(_, c)| c.status != Status::Resolved)
            .filter_map(|(id, c)| c.assignee.as_ref().filter(|a| gone.contains(*a)).map(|a| (id, a)))
            .collect();
        absent.sort();
        for (id, a) in absent {
            actions.push(Action::UnassignAbsent { conversation: id.clone(), agent: a.clone() });
        }
        // Those waiting, oldest first, each to the next online candidate with room.
        let mut waiting: Vec<(&ConversationId, &Conv)> =
            t.conversations.iter().filter(|(_, c)| c.status == Status::Pending && c.assignee.is_none()).collect();
        waiting.sort_by_key(|(id, c)| (c.waiting_since, (*id).clone()));
        let mut last = t.last.clone();
        for (id, c) in waiting {
            let team = c.team.as_ref().filter(|team| t.teams.contains_key(*team));
            let candidates: Vec<&UserId> = match team {
                Some(team) => t.teams[team].iter().filter(|m| online.contains(m)).collect(),
                None => online.iter().copied().collect(),
            };
            let room: Vec<&UserId> =
                candidates.into_iter().filter(|a| load.get(a).copied().unwrap_or(0) < config.capacity && !gone.contains(*a)).collect();
            let key = team.cloned();
            let after = last.get(&key);
            let Some(agent) = room.iter().find(|a| after.is_some_and(|l| **a > l)).or_else(|| room.first()).copied() else { continue };
            *load.entry(agent).or_default() += 1;
            last.insert(key, agent.clone());
            actions.push(Action::Route { conversation: id.clone(), agent: agent.clone() });
        }
        actions
    }

    /// The tenants that turned routing on (have a team): the only ones a
    /// tick reads presence for.
    pub fn routed_tenants(&self) -> Vec<TenantId> {
        self.tenants.iter().filter(|(_, t)| !t.teams.is_empty()).map(|(id, _)| id.clone()).collect()
    }
}

/// The router, ready to run.
pub struct Router {
    pub commands: Arc<CommandHandler>,
    pub presence: Arc<dyn PresenceStore>,
    /// Which tenants' partitions this router decides for ([`tenant_units`]).
    pub share: Arc<WorkShare>,
    pub config: RouterConfig,
}

impl Router {
    /// Follows the log and routes until `stop` is set; then releases its
    /// partitions.
    pub async fn run_until(self, log: Arc<dyn EventLog>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut routing = Routing::default();
        let mut position = 0;
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'subscribe: loop {
            // Decide only once the state has caught up with the log as it stood.
            let head = match log.head().await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "the router cannot read the log; retrying");
                    if pause(&mut stop).await {
                        break;
                    }
                    continue;
                }
            };
            let mut sub = match log.subscribe_all(position).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "the router cannot subscribe to the log; retrying");
                    if pause(&mut stop).await {
                        break;
                    }
                    continue;
                }
            };
            loop {
                tokio::select! {
                    _ = stop.changed() => break 'subscribe,
                    next = sub.next() => match next {
                        Some(Ok(r)) => {
                            position = r.position;
                            routing.fold(&r);
                        }
                        // Resubscribe after a pause: an event that fails on every
                        // read must not spin the loop.
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the router's subscription failed; resubscribing in 1 s");
                            if pause(&mut stop).await {
                                break 'subscribe;
                            }
                            continue 'subscribe;
                        }
                        None => {
                            if pause(&mut stop).await {
                                break 'subscribe;
                            }
                            continue 'subscribe;
                        }
                    },
                    _ = tick.tick() => {
                        if position >= head {
                            self.act(&mut routing).await;
                        }
                    }
                }
            }
        }
        self.share.shutdown().await;
        tracing::info!("router stopped");
    }

    /// One tick: decides and acts for every tenant this router holds.
    async fn act(&self, routing: &mut Routing) {
        let held = self.share.held().borrow().clone();
        for tenant in routing.routed_tenants() {
            if !held.contains(&unit_of(&tenant)) {
                continue;
            }
            let online = match self.presence.online(&tenant).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "the router cannot read who is online");
                    continue;
                }
            };
            for action in routing.decide(&tenant, &online, Instant::now(), &self.config) {
                self.execute(&tenant, action).await;
            }
        }
    }

    async fn execute(&self, tenant: &TenantId, action: Action) {
        let (id, command) = match &action {
            Action::Route { conversation, agent } => {
                let agent = Assignee { id: agent.clone(), tenant: tenant.clone(), role: Role::Agent };
                (conversation, ConversationCommand::Route { agent })
            }
            Action::UnassignAbsent { conversation, agent } => (conversation, ConversationCommand::UnassignAbsent { agent: agent.clone() }),
        };
        let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
        match self.commands.execute::<Conversation>(&StreamId::conversation(tenant, id), &command, &ctx).await {
            Ok(done) if !done.events.is_empty() => {
                tracing::info!(%tenant, conversation = %id, ?action, "routed");
                metrics::counter!("jamuna_router_actions_total", "action" => match action {
                    Action::Route { .. } => "route",
                    Action::UnassignAbsent { .. } => "unassign_absent",
                })
                .increment(1);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%tenant, conversation = %id, error = %e, "the router's command failed; it is decided again next tick"),
        }
    }
}

/// Waits a second, or until asked to stop (true).
async fn pause(stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamuna_domain::conversation::{Channel, HandoffReason};

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }
    fn u(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }
    fn c(s: &str) -> ConversationId {
        ConversationId::parse(s).unwrap()
    }
    fn team(s: &str) -> TeamId {
        TeamId::parse(s).unwrap()
    }
    /// `id` started by customer `cus` of acme, on the web.
    fn started(id: &ConversationId) -> ConversationEvent {
        ConversationEvent::ConversationStarted { tenant: acme(), conversation_id: id.clone(), customer: u("cus"), channel: Channel::Web }
    }
    fn config(capacity: u32) -> RouterConfig {
        RouterConfig { capacity, offline_after: Some(Duration::from_secs(60)), tick: Duration::from_secs(1) }
    }

    /// A routing state with team `billing` (ann, bob), and `n` conversations
    /// handed off in it, `c1`..`cn`.
    fn handed_off(n: usize) -> (Routing, u64) {
        let mut r = Routing::default();
        r.fold_team(&acme(), &TeamEvent::TeamCreated { team: team("billing"), tenant: acme(), name: "Billing".into() });
        for m in ["ann", "bob"] {
            r.fold_team(&acme(), &TeamEvent::TeamMemberAdded { team: team("billing"), user: u(m) });
        }
        let mut p = 0;
        for i in 1..=n {
            let id = c(&format!("c{i}"));
            let started = started(&id);
            for e in [
                started,
                ConversationEvent::TeamAssigned { team: Some(team("billing")) },
                ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None },
            ] {
                p += 1;
                r.fold_conversation(&acme(), &id, p, &e);
            }
        }
        (r, p)
    }

    fn routed(actions: &[Action]) -> Vec<(&str, &str)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Route { conversation, agent } => Some((conversation.as_str(), agent.as_str())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn handoffs_go_to_online_members_in_turn_within_capacity() {
        let (mut r, _) = handed_off(3);
        let now = Instant::now();
        // carol is online but not in the team; bob is offline.
        let actions = r.decide(&acme(), &[u("ann"), u("carol")], now, &config(5));
        assert_eq!(routed(&actions), [("c1", "ann"), ("c2", "ann"), ("c3", "ann")]);
        let actions = r.decide(&acme(), &[u("ann"), u("bob")], now, &config(5));
        assert_eq!(routed(&actions), [("c1", "ann"), ("c2", "bob"), ("c3", "ann")], "in turn");
        let actions = r.decide(&acme(), &[u("ann"), u("bob")], now, &config(1));
        assert_eq!(routed(&actions), [("c1", "ann"), ("c2", "bob")], "one each: c3 waits");
        assert!(r.decide(&acme(), &[u("carol")], now, &config(5)).is_empty(), "nobody of the team is online");
    }

    #[test]
    fn the_turn_continues_after_the_agent_last_assigned() {
        let (mut r, p) = handed_off(2);
        r.fold_conversation(&acme(), &c("c1"), p + 1, &ConversationEvent::AgentAssigned { agent: u("ann") });
        let actions = r.decide(&acme(), &[u("ann"), u("bob")], Instant::now(), &config(5));
        assert_eq!(routed(&actions), [("c2", "bob")]);
    }

    #[test]
    fn a_conversation_of_no_team_goes_to_any_online_agent_once_the_tenant_has_a_team() {
        let mut r = Routing::default();
        let id = c("c9");
        let started = started(&id);
        r.fold_conversation(&acme(), &id, 1, &started);
        assert!(r.decide(&acme(), &[u("zed")], Instant::now(), &config(5)).is_empty(), "the bot still has it");
        r.fold_conversation(&acme(), &id, 2, &ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None });
        assert!(r.decide(&acme(), &[u("zed")], Instant::now(), &config(5)).is_empty(), "no team yet: routing is off");
        r.fold_team(&acme(), &TeamEvent::TeamCreated { team: team("billing"), tenant: acme(), name: "Billing".into() });
        assert_eq!(routed(&r.decide(&acme(), &[u("zed")], Instant::now(), &config(5))), [("c9", "zed")]);
    }

    #[test]
    fn an_agent_offline_too_long_loses_their_conversations() {
        let (mut r, p) = handed_off(1);
        r.fold_conversation(&acme(), &c("c1"), p + 1, &ConversationEvent::AgentAssigned { agent: u("ann") });
        let t0 = Instant::now();
        assert!(r.decide(&acme(), &[u("bob")], t0, &config(5)).is_empty(), "ann just went offline");
        assert!(r.decide(&acme(), &[u("bob")], t0 + Duration::from_secs(59), &config(5)).is_empty());
        let actions = r.decide(&acme(), &[u("bob")], t0 + Duration::from_secs(60), &config(5));
        assert_eq!(actions, [Action::UnassignAbsent { conversation: c("c1"), agent: u("ann") }]);
        // Back online in time: the clock starts again.
        let (mut r, p) = handed_off(1);
        r.fold_conversation(&acme(), &c("c1"), p + 1, &ConversationEvent::AgentAssigned { agent: u("ann") });
        assert!(r.decide(&acme(), &[], t0, &config(5)).is_empty());
        assert!(r.decide(&acme(), &[u("ann")], t0 + Duration::from_secs(30), &config(5)).is_empty());
        assert!(r.decide(&acme(), &[], t0 + Duration::from_secs(70), &config(5)).is_empty());
        // Once unassigned it waits again and goes to bob.
        r.fold_conversation(&acme(), &c("c1"), p + 2, &ConversationEvent::AgentUnassigned { by: None });
        assert_eq!(routed(&r.decide(&acme(), &[u("bob")], t0 + Duration::from_secs(71), &config(5))), [("c1", "bob")]);
    }

    #[test]
    fn a_tenant_without_teams_keeps_its_agents_conversations_however_long_they_are_away() {
        let mut r = Routing::default();
        let id = c("c1");
        let started = started(&id);
        r.fold_conversation(&acme(), &id, 1, &started);
        r.fold_conversation(&acme(), &id, 2, &ConversationEvent::AgentAssigned { agent: u("ann") });
        let t0 = Instant::now();
        assert!(r.decide(&acme(), &[], t0, &config(5)).is_empty());
        assert!(r.decide(&acme(), &[], t0 + Duration::from_secs(3600), &config(5)).is_empty(), "routing is off: nothing unassigned");
        // Routing turned on: ann's absence counts from now, not from before.
        r.fold_team(&acme(), &TeamEvent::TeamCreated { team: team("billing"), tenant: acme(), name: "Billing".into() });
        assert!(r.decide(&acme(), &[], t0 + Duration::from_secs(3601), &config(5)).is_empty());
        let later = r.decide(&acme(), &[], t0 + Duration::from_secs(3661), &config(5));
        assert_eq!(later, [Action::UnassignAbsent { conversation: id, agent: u("ann") }]);
    }

    #[test]
    fn resolved_conversations_free_capacity_and_are_not_routed() {
        let (mut r, p) = handed_off(2);
        r.fold_conversation(&acme(), &c("c1"), p + 1, &ConversationEvent::AgentAssigned { agent: u("ann") });
        assert!(r.decide(&acme(), &[u("ann")], Instant::now(), &config(1)).is_empty(), "ann is full");
        r.fold_conversation(&acme(), &c("c1"), p + 2, &ConversationEvent::ConversationResolved { by: None });
        assert_eq!(routed(&r.decide(&acme(), &[u("ann")], Instant::now(), &config(1))), [("c2", "ann")]);
    }

    #[test]
    fn tenants_fall_in_partitions_the_same_way_everywhere() {
        assert_eq!(unit_of(&acme()), unit_of(&acme()));
        assert!(tenant_units().contains(&unit_of(&acme())));
        assert_eq!(tenant_units().len(), PARTITIONS as usize);
    }
}
