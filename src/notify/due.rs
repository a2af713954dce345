//! What the notifier knows of each conversation, folded from the log, and
//! the one rule of time it applies: when an unanswered customer message is
//! due to be e-mailed to the assigned agent.
//!
//! Pure: no I/O, no clock (the caller passes `now`). Because the state is a
//! fold of the log, and each event carries the time it happened, the due
//! times are the same after a restart as before it: the timer survives a
//! restart by being derived, not stored.
//!
//! A conversation is *waiting* from its first customer message after the
//! last agent message (bot answers do not count: a human has not answered).
//! It is *due* `after` past the later of that message and the agent's
//! assignment (an agent just assigned gets the full time to answer), while
//! it is assigned, not resolved, and no `Unanswered` notification about that
//! message was recorded.

use jamuna_domain::conversation::{Author, ConversationEvent, NotificationKind};
use jamuna_domain::{StreamId, Timestamp, UserId};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// A notification the notifier should record now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub stream: StreamId,
    pub kind: NotificationKind,
    pub recipient: UserId,
    pub about_version: u64,
}

#[derive(Debug, Clone, Default)]
struct Tracked {
    customer: Option<UserId>,
    assignee: Option<(UserId, Timestamp)>,
    resolved: bool,
    /// The first customer message without an agent message after it: (version, when).
    waiting: Option<(u64, Timestamp)>,
    notified: BTreeSet<(NotificationKind, u64)>,
}

impl Tracked {
    /// When the waiting message is due to be e-mailed to the assignee, and to whom.
    fn due_at(&self, after: Duration) -> Option<(Timestamp, &UserId, u64)> {
        let (agent, assigned_at) = self.assignee.as_ref()?;
        let (version, since) = self.waiting?;
        if self.resolved || self.notified.contains(&(NotificationKind::Unanswered, version)) {
            return None;
        }
        let after = chrono::Duration::from_std(after).ok()?;
        Some(((*assigned_at).max(since) + after, agent, version))
    }
}

/// Every conversation's state, as far as the notifier cares.
#[derive(Debug, Default)]
pub struct Conversations {
    by_stream: HashMap<StreamId, Tracked>,
}

impl Conversations {
    /// Folds the event at `version` of `stream`, which happened `at`.
    pub fn apply(&mut self, stream: &StreamId, version: u64, at: Timestamp, event: &ConversationEvent) {
        use ConversationEvent as V;
        let t = self.by_stream.entry(stream.clone()).or_default();
        match event {
            V::ConversationStarted { customer, .. } => t.customer = Some(customer.clone()),
            V::MessagePosted { author: Author::Customer, .. } => {
                t.waiting.get_or_insert((version, at));
            }
            V::MessagePosted { author: Author::Agent { .. }, .. } => t.waiting = None,
            V::AgentAssigned { agent } => t.assignee = Some((agent.clone(), at)),
            // Nobody to e-mail until someone is assigned again.
            V::AgentUnassigned { .. } => t.assignee = None,
            V::ConversationResolved { .. } => {
                t.resolved = true;
                t.waiting = None;
            }
            V::ConversationReopened { .. } => t.resolved = false,
            V::NotificationSent { kind, about_version, .. } => {
                t.notified.insert((*kind, *about_version));
            }
            V::MessagePosted { author: Author::Bot, .. }
            | V::BotAnswered { .. }
            | V::HandoffRequested { .. }
            | V::FeedbackGiven { .. }
            | V::TagsChanged { .. }
            | V::TeamAssigned { .. }
            // A private note is no reply to the customer: the wait goes on.
            | V::NoteAdded { .. } => {}
        }
    }

    /// The conversation's customer, once it started.
    pub fn customer(&self, stream: &StreamId) -> Option<&UserId> {
        self.by_stream.get(stream)?.customer.as_ref()
    }

    /// Whether a notification of `kind` about `version` of `stream` was recorded.
    pub fn notified(&self, stream: &StreamId, kind: NotificationKind, version: u64) -> bool {
        self.by_stream.get(stream).is_some_and(|t| t.notified.contains(&(kind, version)))
    }

    /// The `Unanswered` notifications due at `now`, `after` being how long a
    /// customer message may wait for an agent.
    pub fn due(&self, now: Timestamp, after: Duration) -> Vec<Due> {
        let mut due: Vec<Due> = self
            .by_stream
            .iter()
            .filter_map(|(stream, t)| {
                let (at, agent, version) = t.due_at(after)?;
                (at <= now).then(|| Due {
                    stream: stream.clone(),
                    kind: NotificationKind::Unanswered,
                    recipient: agent.clone(),
                    about_version: version,
                })
            })
            .collect();
        due.sort_by(|a, b| a.stream.cmp(&b.stream));
        due
    }

    /// The earliest time something will be due, if anything will.
    pub fn next_due(&self, after: Duration) -> Option<Timestamp> {
        self.by_stream.values().filter_map(|t| t.due_at(after).map(|(at, ..)| at)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamuna_domain::conversation::Channel;
    use jamuna_domain::{ConversationId, Personal, TenantId};

    const TEN_MINUTES: Duration = Duration::from_secs(600);

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }
    fn stream() -> StreamId {
        StreamId::conversation(&TenantId::parse("acme").unwrap(), &ConversationId::parse("c1").unwrap())
    }
    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }
    fn says(author: Author) -> ConversationEvent {
        ConversationEvent::MessagePosted { author, text: Personal::plain("hello"), client_message_id: None, attachments: vec![] }
    }
    /// Folds `(at, event)` pairs as versions 1, 2, …
    fn fold(events: Vec<(i64, ConversationEvent)>) -> Conversations {
        let mut c = Conversations::default();
        for (i, (secs, e)) in events.into_iter().enumerate() {
            c.apply(&stream(), i as u64 + 1, at(secs), &e);
        }
        c
    }
    fn started() -> ConversationEvent {
        ConversationEvent::ConversationStarted {
            tenant: TenantId::parse("acme").unwrap(),
            conversation_id: ConversationId::parse("c1").unwrap(),
            customer: user("cust"),
            channel: Channel::Web,
        }
    }
    fn assigned() -> ConversationEvent {
        ConversationEvent::AgentAssigned { agent: user("ann") }
    }
    fn unanswered(version: u64) -> Due {
        Due { stream: stream(), kind: NotificationKind::Unanswered, recipient: user("ann"), about_version: version }
    }

    #[test]
    fn an_assigned_message_without_an_agent_reply_is_due_after_the_delay_from_its_first_message() {
        let c = fold(vec![(0, started()), (10, assigned()), (20, says(Author::Customer)), (300, says(Author::Customer))]);
        assert_eq!(c.next_due(TEN_MINUTES), Some(at(620)), "from the first unanswered message, not the last");
        assert_eq!(c.due(at(619), TEN_MINUTES), vec![]);
        assert_eq!(c.due(at(620), TEN_MINUTES), vec![unanswered(3)]);
    }

    #[test]
    fn an_agent_just_assigned_gets_the_whole_delay() {
        let c = fold(vec![(0, started()), (5, says(Author::Customer)), (1000, assigned())]);
        assert_eq!(c.next_due(TEN_MINUTES), Some(at(1600)));
        assert_eq!(c.due(at(1599), TEN_MINUTES), vec![]);
        assert_eq!(c.due(at(1600), TEN_MINUTES), vec![unanswered(2)]);
    }

    #[test]
    fn nothing_is_due_without_an_assignee_after_an_agent_reply_or_once_resolved() {
        let unassigned = fold(vec![(0, started()), (5, says(Author::Customer))]);
        assert_eq!((unassigned.due(at(10_000), TEN_MINUTES), unassigned.next_due(TEN_MINUTES)), (vec![], None));
        let answered =
            fold(vec![(0, started()), (1, assigned()), (5, says(Author::Customer)), (9, says(Author::Agent { id: user("ann") }))]);
        assert_eq!(answered.due(at(10_000), TEN_MINUTES), vec![]);
        let resolved = fold(vec![
            (0, started()),
            (1, assigned()),
            (5, says(Author::Customer)),
            (9, ConversationEvent::ConversationResolved { by: None }),
        ]);
        assert_eq!(resolved.due(at(10_000), TEN_MINUTES), vec![]);
    }

    #[test]
    fn a_bot_answer_is_not_an_agent_reply() {
        let bot = ConversationEvent::BotAnswered {
            in_reply_to: 3,
            text: Personal::plain("Try this."),
            intent: None,
            confidence: 0.9,
            sources: vec![],
            why: None,
        };
        let c = fold(vec![(0, started()), (1, assigned()), (5, says(Author::Customer)), (6, bot)]);
        assert_eq!(c.due(at(605), TEN_MINUTES), vec![unanswered(3)]);
    }

    #[test]
    fn a_recorded_notification_is_not_due_again_and_the_next_message_starts_a_new_wait() {
        let notified = ConversationEvent::NotificationSent { kind: NotificationKind::Unanswered, recipient: user("ann"), about_version: 3 };
        let mut events = vec![(0, started()), (1, assigned()), (5, says(Author::Customer)), (700, notified)];
        assert_eq!(fold(events.clone()).due(at(10_000), TEN_MINUTES), vec![], "once per message");
        events.push((800, says(Author::Agent { id: user("ann") })));
        events.push((900, says(Author::Customer)));
        let c = fold(events);
        assert_eq!(c.due(at(1499), TEN_MINUTES), vec![]);
        assert_eq!(c.due(at(1500), TEN_MINUTES), vec![unanswered(6)]);
    }
}
