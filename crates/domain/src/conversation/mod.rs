//! The conversation: a customer (or anonymous visitor) talking with the
//! support team, answered by the bot until a human takes over.
//!
//! Its rules, each enforced in [`Conversation::decide`]:
//!
//! * nothing is posted to a resolved conversation until it is reopened;
//! * only agents and admins of the conversation's own tenant are assigned;
//! * once a human is involved (a handoff was requested, an agent was
//!   assigned, or an agent wrote) the bot does not answer any more;
//! * a message whose client message id was seen before in the conversation
//!   produces no new event, so a client may retry safely;
//! * a bot answer to a message that was already answered produces no new
//!   event, so the AI worker may retry safely;
//! * a 👎 on a bot answer while the bot still has the conversation (no human
//!   involved, not resolved) hands it to a human: `FeedbackGiven` and
//!   `HandoffRequested { reason: NegativeFeedback }` in the same append;
//! * message text is valid by construction ([`crate::MessageText`]);
//! * a message has text, attachments, or both; at most
//!   [`MAX_ATTACHMENTS_PER_MESSAGE`] attachments, each posted once in the
//!   conversation (an upload is attached to one message).
//! * a notification of one kind about one event is recorded once, and only
//!   about an event the conversation has.
//! * a private note (`NoteAdded`, staff-only) is written by staff of the
//!   conversation's tenant, also on a resolved conversation; it names staff
//!   of the tenant only, each once, at most [`MAX_MENTIONS`]; it never
//!   changes the status and never counts as a human's reply (the bot goes on
//!   as before).
//! * unassigning a conversation a human was asked for puts it back to
//!   waiting for a human (pending); the bot does not come back;
//! * the router's commands ([`ConversationCommand::Route`],
//!   [`ConversationCommand::UnassignAbsent`]) change a conversation only if
//!   it still stands as the router saw it, and are no-ops otherwise.

mod command;
mod error;
mod event;
mod why;

pub use command::{Assignee, ConversationCommand};
pub use error::ConversationError;
pub use event::ConversationEvent;
pub use why::{Basis, DecisionScores, DecisionWhy};

use crate::attachment::MAX_ATTACHMENTS_PER_MESSAGE;
use crate::user::Role;
use crate::{Aggregate, AggregateKind, ArticleId, AttachmentId, ClientMessageId, Personal, TeamId, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// The most colleagues one note may mention.
pub const MAX_MENTIONS: usize = 20;

/// Whether `user` is staff of `tenant`: the error that says why not.
fn staff_of(user: &Assignee, tenant: Option<&TenantId>) -> Result<(), ConversationError> {
    if !matches!(user.role, Role::Agent | Role::Admin) {
        return Err(ConversationError::NotAnAgent);
    }
    if tenant != Some(&user.tenant) {
        return Err(ConversationError::OtherTenant);
    }
    Ok(())
}

/// Where the customer writes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Mobile,
    Api,
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Author {
    /// The conversation's customer.
    Customer,
    Agent {
        id: UserId,
    },
    Bot,
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being handled, by the bot or by an assigned agent.
    Open,
    /// Waiting for a human.
    Pending,
    Resolved,
}

/// Why the conversation goes to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    LowConfidence,
    CustomerAsked,
    RepeatedFailure,
    NegativeFeedback,
    /// A member of staff took the conversation over from the bot. (Before
    /// this variant, such handoffs were recorded as `customer_asked`; those
    /// events stay as they are.)
    AgentTookOver,
    /// The question reads as one of the tenant's examples of what the bot
    /// must hand to a person (the reserved intent
    /// [`crate::knowledge_base::OUT_OF_SCOPE_INTENT`]).
    OutOfScope,
}

impl HandoffReason {
    /// The reason of a handoff someone asked for: the customer asks, staff take over.
    pub fn asked_by(role: Role) -> Self {
        match role {
            Role::Customer => Self::CustomerAsked,
            Role::Agent | Role::Admin => Self::AgentTookOver,
        }
    }
}

/// A passage of the knowledge base that a bot answer rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub article_id: ArticleId,
    pub title: String,
    pub passage: String,
    pub score: f32,
}

/// What a customer thinks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feedback {
    /// Customer satisfaction, 1 (bad) to 5 (good), given on a resolved conversation.
    Csat { score: u8, comment: Option<Personal> },
    /// "This helped" / "this didn't help" on one bot answer.
    Answer { answer_version: u64, helpful: bool },
}

/// What a notification (e-mail) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// To the assigned agent: the customer message at `about_version` has
    /// had no agent reply for the configured time.
    Unanswered,
    /// To the customer, away from the widget: the agent's reply at `about_version`.
    Reply,
}

/// A label agents put on conversations: trimmed, lower case, 1 to 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

/// Why a string is not a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tag has 1 to 32 characters and no control characters")]
pub struct TagError;

impl Tag {
    pub fn parse(s: &str) -> Result<Self, TagError> {
        let t = s.trim().to_lowercase();
        let n = t.chars().count();
        if n == 0 || n > 32 || t.chars().any(char::is_control) {
            return Err(TagError);
        }
        Ok(Self(t))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = TagError;
    fn try_from(s: String) -> Result<Self, TagError> {
        Self::parse(&s)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> String {
        t.0
    }
}

/// Who started the conversation, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub tenant: TenantId,
    pub customer: UserId,
    pub channel: Channel,
}

/// The state a conversation's commands are decided against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    version: u64,
    started: Option<Started>,
    status: Option<Status>,
    assignee: Option<UserId>,
    team: Option<TeamId>,
    human_involved: bool,
    tags: BTreeSet<Tag>,
    /// Client message id → the version its message was stored at.
    client_messages: HashMap<ClientMessageId, u64>,
    customer_messages: BTreeSet<u64>,
    answered: BTreeSet<u64>,
    answers: BTreeSet<u64>,
    csat: Option<u8>,
    /// Every upload already attached to a message.
    attached: BTreeSet<AttachmentId>,
    /// Notifications recorded: (kind, the version they are about).
    notified: BTreeSet<(NotificationKind, u64)>,
}

impl Conversation {
    pub fn started(&self) -> Option<&Started> {
        self.started.as_ref()
    }
    pub fn status(&self) -> Option<Status> {
        self.status
    }
    pub fn assignee(&self) -> Option<&UserId> {
        self.assignee.as_ref()
    }
    pub fn team(&self) -> Option<&TeamId> {
        self.team.as_ref()
    }
    /// True once a human has taken over: the bot stays silent.
    pub fn human_involved(&self) -> bool {
        self.human_involved
    }
    pub fn tags(&self) -> &BTreeSet<Tag> {
        &self.tags
    }
    pub fn csat(&self) -> Option<u8> {
        self.csat
    }
    /// Whether a notification of `kind` about the event at `version` was recorded.
    pub fn notified(&self, kind: NotificationKind, version: u64) -> bool {
        self.notified.contains(&(kind, version))
    }
    /// The version a message with this client message id was stored at.
    pub fn client_message_version(&self, id: &ClientMessageId) -> Option<u64> {
        self.client_messages.get(id).copied()
    }

    /// Only agents and admins of the conversation's own tenant are assigned.
    fn check_assignee(&self, agent: &Assignee) -> Result<(), ConversationError> {
        if !matches!(agent.role, Role::Agent | Role::Admin) {
            return Err(ConversationError::NotAnAgent);
        }
        if self.started.as_ref().map(|s| &s.tenant) != Some(&agent.tenant) {
            return Err(ConversationError::OtherTenant);
        }
        Ok(())
    }

    fn open_status(&self) -> Result<Status, ConversationError> {
        match self.status {
            None => Err(ConversationError::NotStarted),
            Some(Status::Resolved) => Err(ConversationError::AlreadyResolved),
            Some(s) => Ok(s),
        }
    }
}

/// Whether a decision's why (if any) holds finite scores only.
fn why_is_finite(why: &Option<DecisionWhy>) -> bool {
    why.as_ref().is_none_or(|w| w.scores.is_finite())
}

impl Aggregate for Conversation {
    const KIND: AggregateKind = AggregateKind::Conversation;
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;

    fn decide(&self, command: &ConversationCommand, _now: Timestamp) -> Result<Vec<ConversationEvent>, ConversationError> {
        use ConversationCommand as C;
        use ConversationError as E;
        use ConversationEvent as V;
        match command {
            C::Start { tenant, conversation_id, customer, channel } => {
                if self.started.is_some() {
                    return Err(E::AlreadyStarted);
                }
                Ok(vec![V::ConversationStarted {
                    tenant: tenant.clone(),
                    conversation_id: conversation_id.clone(),
                    customer: customer.clone(),
                    channel: *channel,
                }])
            }
            C::PostMessage { author, text, client_message_id, attachments } => {
                if self.started.is_none() {
                    return Err(E::NotStarted);
                }
                if client_message_id.as_ref().is_some_and(|id| self.client_messages.contains_key(id)) {
                    return Ok(vec![]);
                }
                self.open_status()?;
                if *author == Author::Bot && self.human_involved {
                    return Err(E::HandedToHuman);
                }
                if text.is_none() && attachments.is_empty() {
                    return Err(E::EmptyMessage);
                }
                if attachments.len() > MAX_ATTACHMENTS_PER_MESSAGE {
                    return Err(E::TooManyAttachments(MAX_ATTACHMENTS_PER_MESSAGE));
                }
                let mut seen = BTreeSet::new();
                if let Some(a) = attachments.iter().find(|a| self.attached.contains(&a.id) || !seen.insert(&a.id)) {
                    return Err(E::AttachmentAlreadyPosted(a.id.clone()));
                }
                Ok(vec![V::MessagePosted {
                    author: author.clone(),
                    text: Personal::plain(text.as_ref().map_or("", |t| t.as_str())),
                    client_message_id: client_message_id.clone(),
                    attachments: attachments.clone(),
                }])
            }
            C::AnswerMessage { in_reply_to, text, intent, confidence, sources, why } => {
                self.open_status()?;
                if !confidence.is_finite() || sources.iter().any(|s| !s.score.is_finite()) || !why_is_finite(why) {
                    return Err(E::NotFinite);
                }
                if !self.customer_messages.contains(in_reply_to) {
                    return Err(E::UnknownMessage(*in_reply_to));
                }
                if self.answered.contains(in_reply_to) {
                    return Ok(vec![]);
                }
                if self.human_involved {
                    return Err(E::HandedToHuman);
                }
                Ok(vec![V::BotAnswered {
                    in_reply_to: *in_reply_to,
                    text: Personal::plain(text.as_str()),
                    intent: intent.clone(),
                    confidence: *confidence,
                    sources: sources.clone(),
                    why: why.clone(),
                }])
            }
            C::RequestHandoff { reason, why } => {
                self.open_status()?;
                if !why_is_finite(why) {
                    return Err(E::NotFinite);
                }
                if self.human_involved {
                    return Ok(vec![]);
                }
                Ok(vec![V::HandoffRequested { reason: *reason, why: why.clone() }])
            }
            C::AssignAgent { agent } => {
                self.open_status()?;
                self.check_assignee(agent)?;
                if self.assignee.as_ref() == Some(&agent.id) {
                    return Ok(vec![]);
                }
                Ok(vec![V::AgentAssigned { agent: agent.id.clone() }])
            }
            C::AssignTeam { team } => {
                self.open_status()?;
                if &self.team == team {
                    return Ok(vec![]);
                }
                Ok(vec![V::TeamAssigned { team: team.clone() }])
            }
            C::Unassign { by } => {
                self.open_status()?;
                if self.assignee.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![V::AgentUnassigned { by: by.clone() }])
            }
            C::Route { agent } => {
                if self.status != Some(Status::Pending) || self.assignee.is_some() {
                    return Ok(vec![]);
                }
                self.check_assignee(agent)?;
                Ok(vec![V::AgentAssigned { agent: agent.id.clone() }])
            }
            C::UnassignAbsent { agent } => {
                if self.assignee.as_ref() != Some(agent) || matches!(self.status, None | Some(Status::Resolved)) {
                    return Ok(vec![]);
                }
                Ok(vec![V::AgentUnassigned { by: None }])
            }
            C::Resolve { by } => {
                self.open_status()?;
                Ok(vec![V::ConversationResolved { by: by.clone() }])
            }
            C::Reopen { by } => match self.status {
                None => Err(E::NotStarted),
                Some(Status::Resolved) => Ok(vec![V::ConversationReopened { by: by.clone() }]),
                Some(_) => Err(E::NotResolved),
            },
            C::ChangeTags { add, remove } => {
                if self.started.is_none() {
                    return Err(E::NotStarted);
                }
                let added: BTreeSet<Tag> = add.iter().filter(|t| !self.tags.contains(*t)).cloned().collect();
                let removed: BTreeSet<Tag> = remove.iter().filter(|t| self.tags.contains(*t) && !added.contains(*t)).cloned().collect();
                if added.is_empty() && removed.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![V::TagsChanged { added: added.into_iter().collect(), removed: removed.into_iter().collect() }])
            }
            C::GiveFeedback { feedback } => {
                match feedback {
                    Feedback::Csat { score, comment } => {
                        if self.status.is_none() {
                            return Err(E::NotStarted);
                        }
                        if self.status != Some(Status::Resolved) {
                            return Err(E::NotResolved);
                        }
                        if !(1..=5).contains(score) {
                            return Err(E::InvalidScore(*score));
                        }
                        if comment.as_ref().and_then(Personal::text).is_some_and(|c| c.chars().count() > 1000) {
                            return Err(E::CommentTooLong);
                        }
                    }
                    Feedback::Answer { answer_version, helpful } => {
                        if !self.answers.contains(answer_version) {
                            return Err(E::UnknownAnswer(*answer_version));
                        }
                        // A 👎 while the bot still has the conversation: a human takes over.
                        if !helpful && !self.human_involved && self.status.is_some_and(|s| s != Status::Resolved) {
                            return Ok(vec![
                                V::FeedbackGiven { feedback: feedback.clone() },
                                V::HandoffRequested { reason: HandoffReason::NegativeFeedback, why: None },
                            ]);
                        }
                    }
                }
                Ok(vec![V::FeedbackGiven { feedback: feedback.clone() }])
            }
            C::RecordNotification { kind, recipient, about_version } => {
                if self.started.is_none() {
                    return Err(E::NotStarted);
                }
                if *about_version == 0 || *about_version > self.version {
                    return Err(E::UnknownMessage(*about_version));
                }
                if self.notified.contains(&(*kind, *about_version)) {
                    return Ok(vec![]);
                }
                Ok(vec![V::NotificationSent { kind: *kind, recipient: recipient.clone(), about_version: *about_version }])
            }
            C::AddNote { author, text, mentions } => {
                let Some(started) = &self.started else { return Err(E::NotStarted) };
                staff_of(author, Some(&started.tenant))?;
                let mut named: Vec<UserId> = Vec::with_capacity(mentions.len());
                for m in mentions {
                    staff_of(m, Some(&started.tenant))?;
                    if !named.contains(&m.id) {
                        named.push(m.id.clone());
                    }
                }
                if named.len() > MAX_MENTIONS {
                    return Err(E::TooManyMentions { got: named.len(), max: MAX_MENTIONS });
                }
                Ok(vec![V::NoteAdded { author: author.id.clone(), text: Personal::plain(text.as_str()), mentions: named }])
            }
        }
    }

    fn apply(&mut self, event: &ConversationEvent) {
        use ConversationEvent as V;
        self.version += 1;
        match event {
            V::ConversationStarted { tenant, customer, channel, .. } => {
                self.started = Some(Started { tenant: tenant.clone(), customer: customer.clone(), channel: *channel });
                self.status = Some(Status::Open);
            }
            V::MessagePosted { author, client_message_id, attachments, .. } => {
                if let Some(id) = client_message_id {
                    self.client_messages.insert(id.clone(), self.version);
                }
                self.attached.extend(attachments.iter().map(|a| a.id.clone()));
                match author {
                    Author::Customer => {
                        self.customer_messages.insert(self.version);
                    }
                    Author::Agent { .. } => self.human_involved = true,
                    Author::Bot => {}
                }
            }
            V::BotAnswered { in_reply_to, .. } => {
                self.answered.insert(*in_reply_to);
                self.answers.insert(self.version);
            }
            V::HandoffRequested { .. } => {
                self.human_involved = true;
                if self.assignee.is_none() {
                    self.status = Some(Status::Pending);
                }
            }
            V::AgentAssigned { agent } => {
                self.human_involved = true;
                self.assignee = Some(agent.clone());
                self.status = Some(Status::Open);
            }
            V::ConversationResolved { .. } => self.status = Some(Status::Resolved),
            V::ConversationReopened { .. } => {
                let waiting = self.human_involved && self.assignee.is_none();
                self.status = Some(if waiting { Status::Pending } else { Status::Open });
            }
            V::FeedbackGiven { feedback } => {
                if let Feedback::Csat { score, .. } = feedback {
                    self.csat = Some(*score);
                }
            }
            V::TagsChanged { added, removed } => {
                for t in removed {
                    self.tags.remove(t);
                }
                self.tags.extend(added.iter().cloned());
            }
            V::NotificationSent { kind, about_version, .. } => {
                self.notified.insert((*kind, *about_version));
            }
            // Staff talking among themselves: neither the status nor the bot changes.
            V::NoteAdded { .. } => {}
            V::TeamAssigned { team } => self.team = team.clone(),
            V::AgentUnassigned { .. } => {
                self.assignee = None;
                if self.human_involved && self.status == Some(Status::Open) {
                    self.status = Some(Status::Pending);
                }
            }
        }
    }

    fn data_subject(&self, event: &ConversationEvent) -> Option<UserId> {
        match event {
            ConversationEvent::ConversationStarted { customer, .. } => Some(customer.clone()),
            _ => self.started.as_ref().map(|s| s.customer.clone()),
        }
    }

    fn version(&self) -> u64 {
        self.version
    }
}

#[cfg(test)]
mod tests;
