//! The conversations read model: what the agent inbox, the conversation view
//! and a customer's history show.
//!
//! One **summary** per conversation (status, assignee, tags, times, last
//! message, CSAT, the stream version and log position it reflects) and its
//! **messages** (author, opened text, time, client message id, and for bot
//! answers the intent, confidence and sources).
//!
//! The fold ([`apply`], [`erase`]) is pure and shared by the adapters
//! ([`sqlite`]: a row per conversation and per message, FTS5 for search;
//! [`mongo`]: a document per conversation with its messages inside, in the
//! seed's shape). When a customer is erased (`UserErased`), the text of every
//! message of their conversations — theirs, the bot's and the agents', all
//! sealed with the customer's key — reads [`Personal::ERASED_TEXT`], as a
//! replay after the erasure (when the key is gone) would show it.

#[cfg(feature = "testing")]
pub mod contract;
pub mod mongo;
pub mod sqlite;

use crate::error::{ProjectionError, StoreError};
use crate::event::{Interest, Opened, ReadModel, ReadModelProjection, personal_text};
use crate::runtime::Projection;
use async_trait::async_trait;
use base64::Engine;
use jamuna_commands::Sealer;
use jamuna_domain::conversation::{Author, Channel, ConversationEvent, Feedback, HandoffReason, Source, Status, Tag};
use jamuna_domain::{AggregateKind, ClientMessageId, ConversationId, Personal, TeamId, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The projection's name, and the key of its checkpoint.
pub const PROJECTION: &str = "conversations";
/// How many characters of the last message a summary keeps.
pub const PREVIEW_CHARS: usize = 140;
/// The most conversations one page holds.
pub const MAX_PAGE: usize = 100;

/// A conversation, as the inbox lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub tenant: TenantId,
    pub id: ConversationId,
    pub customer: UserId,
    pub channel: Channel,
    pub status: Status,
    pub assignee: Option<UserId>,
    /// The team the conversation is given to (absent from summaries stored before teams).
    #[serde(default)]
    pub team: Option<TeamId>,
    /// Why a human was asked for, while the conversation waits for one.
    pub handoff_reason: Option<HandoffReason>,
    /// A human has taken part (a handoff, an assignment, an agent's message).
    pub human_involved: bool,
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The first message of the bot or an agent.
    pub first_response_at: Option<Timestamp>,
    /// When it was last resolved (cleared when reopened).
    pub resolved_at: Option<Timestamp>,
    pub last_message: Option<MessagePreview>,
    pub message_count: u64,
    pub csat: Option<Csat>,
    /// The stream version this summary reflects.
    pub version: u64,
    /// The log position this summary reflects.
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagePreview {
    pub author: Author,
    pub text: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Csat {
    pub score: u8,
    pub comment: Option<String>,
    pub at: Timestamp,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The stream version of the event that posted it.
    pub version: u64,
    pub author: Author,
    /// The opened text, or [`Personal::ERASED_TEXT`].
    pub text: String,
    pub erased: bool,
    pub at: Timestamp,
    pub client_message_id: Option<ClientMessageId>,
    /// Set for the bot's answers.
    pub bot: Option<BotAnswer>,
}

/// What the bot said about its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotAnswer {
    /// The version of the customer message it answers.
    pub in_reply_to: u64,
    pub intent: Option<String>,
    pub confidence: f32,
    pub sources: Vec<Source>,
}

/// A conversation with its messages, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationDetail {
    pub summary: ConversationSummary,
    pub messages: Vec<Message>,
}

/// The inbox's views.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InboxView {
    #[default]
    All,
    /// Not resolved, nobody assigned.
    Unassigned,
    /// Not resolved, assigned to this agent.
    Mine(UserId),
    /// Waiting for a human (status pending).
    Pending,
    Resolved,
}

/// A list query. Every query is scoped to one tenant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConversationQuery {
    pub tenant: Option<TenantId>,
    /// Only this customer's conversations (a customer's own history).
    pub customer: Option<UserId>,
    pub view: InboxView,
    pub status: Option<Status>,
    pub tag: Option<Tag>,
    /// Only conversations given to this team.
    pub team: Option<TeamId>,
    pub channel: Option<Channel>,
    /// Started at or after.
    pub created_from: Option<Timestamp>,
    /// Started before.
    pub created_to: Option<Timestamp>,
    /// Every word must occur in the conversation's messages (case-insensitive;
    /// a word matches as a prefix of a word in SQLite, as a substring in MongoDB).
    pub text: Option<String>,
    /// At most [`MAX_PAGE`]; 0 means the default (25).
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

impl ConversationQuery {
    /// The agent inbox of a tenant, all conversations.
    pub fn inbox(tenant: TenantId) -> Self {
        Self { tenant: Some(tenant), ..Self::default() }
    }

    /// A customer's own conversations.
    pub fn of_customer(tenant: TenantId, customer: UserId) -> Self {
        Self { tenant: Some(tenant), customer: Some(customer), ..Self::default() }
    }

    pub fn view(mut self, view: InboxView) -> Self {
        self.view = view;
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    /// The tenant, which every query must name.
    pub fn tenant(&self) -> Result<&TenantId, StoreError> {
        self.tenant.as_ref().ok_or_else(|| StoreError::Invalid("a conversation query needs a tenant".into()))
    }

    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => 25,
            n => n.min(MAX_PAGE),
        }
    }

    /// The words of the text search, if any.
    pub fn words(&self) -> Vec<String> {
        self.text.as_deref().unwrap_or_default().split_whitespace().map(str::to_lowercase).collect()
    }
}

/// A page of results and the cursor of the next page (`None`: the last page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// An opaque position in a list ordered by `updated_at` descending, then id
/// descending. Clients pass it back as they got it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    pub fn new(updated_at_us: i64, id: &str) -> Self {
        Cursor(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{updated_at_us}:{id}")))
    }

    /// Accepts what [`Cursor::as_str`] gave out.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let c = Cursor(s.to_owned());
        c.parts()?;
        Ok(c)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `(updated_at in µs, conversation id)`.
    pub fn parts(&self) -> Result<(i64, String), StoreError> {
        let bad = || StoreError::Invalid("not a cursor of this list".into());
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&self.0).map_err(|_| bad())?;
        let s = String::from_utf8(bytes).map_err(|_| bad())?;
        let (us, id) = s.split_once(':').ok_or_else(bad)?;
        let id = ConversationId::parse(id).map_err(|_| bad())?;
        Ok((us.parse().map_err(|_| bad())?, id.to_string()))
    }
}

/// The conversations read model's port.
#[async_trait]
pub trait ConversationStore: ReadModel {
    /// A conversation and its messages.
    async fn conversation(&self, tenant: &TenantId, id: &ConversationId) -> Result<Option<ConversationDetail>, StoreError>;
    /// A page of conversations, newest activity first.
    async fn list(&self, query: &ConversationQuery) -> Result<Page<ConversationSummary>, StoreError>;
    /// How many conversations of `tenant` wait for a human (pending, nobody
    /// assigned), per team (`None`: given to no team), teams with none left out.
    async fn waiting_by_team(&self, tenant: &TenantId) -> Result<Vec<(Option<TeamId>, u64)>, StoreError>;
    /// Conversations not resolved, across every tenant (an operator's gauge,
    /// `jamuna_conversations_active`; never shown to a tenant).
    async fn open_count(&self) -> Result<u64, StoreError>;
    /// The private notes that mention `user` in `tenant`, newest first, those
    /// logged before position `before` (the last one of the previous page),
    /// at most `limit` (1 to [`MAX_MENTIONS_PAGE`]).
    async fn mentions(&self, tenant: &TenantId, user: &UserId, before: Option<u64>, limit: usize) -> Result<Vec<Mention>, StoreError>;
}

/// The projection that keeps a [`ConversationStore`] up to date.
pub fn projection(store: Arc<dyn ConversationStore>, sealer: Sealer) -> Arc<dyn Projection> {
    Arc::new(ReadModelProjection::new(PROJECTION, sealer, store))
}

/// What the conversations model needs of an event.
pub fn interest(kind: AggregateKind, event_type: &str) -> Interest {
    match (kind, event_type) {
        // The model keeps a note's mentions, never its text: no need to open it.
        (AggregateKind::Conversation, "NoteAdded") => Interest::Decode,
        (AggregateKind::Conversation, _) => Interest::Open,
        (AggregateKind::User, "UserErased") => Interest::Decode,
        _ => Interest::Skip,
    }
}

/// The conversation a conversation event belongs to.
pub fn conversation_id(e: &Opened) -> Result<ConversationId, ProjectionError> {
    ConversationId::parse(e.stream.id()).map_err(|err| ProjectionError::bad_event(e.position, err))
}

fn preview(author: &Author, text: &str, at: Timestamp) -> MessagePreview {
    MessagePreview { author: author.clone(), text: text.chars().take(PREVIEW_CHARS).collect(), at }
}

/// Folds one conversation event into its summary (`None` before the
/// conversation started). Returns the message the event adds, if any. An
/// event at or below the position the summary reflects changes nothing.
pub fn apply(summary: &mut Option<ConversationSummary>, e: &Opened, event: &ConversationEvent) -> Result<Option<Message>, ProjectionError> {
    use ConversationEvent as V;
    if let V::ConversationStarted { tenant, conversation_id, customer, channel } = event {
        if summary.as_ref().is_some_and(|s| s.position >= e.position) {
            return Ok(None);
        }
        if summary.is_some() {
            return Err(ProjectionError::bad_event(e.position, format!("conversation {conversation_id} started twice")));
        }
        *summary = Some(ConversationSummary {
            tenant: tenant.clone(),
            id: conversation_id.clone(),
            customer: customer.clone(),
            channel: *channel,
            status: Status::Open,
            assignee: None,
            team: None,
            handoff_reason: None,
            human_involved: false,
            tags: vec![],
            created_at: e.at,
            updated_at: e.at,
            first_response_at: None,
            resolved_at: None,
            last_message: None,
            message_count: 0,
            csat: None,
            version: e.version,
            position: e.position,
        });
        return Ok(None);
    }
    let Some(s) = summary.as_mut() else {
        return Err(ProjectionError::bad_event(
            e.position,
            format!("{} in {} before the conversation started", event_name(event), e.stream),
        ));
    };
    if s.position >= e.position {
        return Ok(None);
    }
    s.version = e.version;
    s.position = e.position;
    s.updated_at = e.at;
    let mut message = None;
    match event {
        V::ConversationStarted { .. } => {}
        V::MessagePosted { author, text, client_message_id, .. } => {
            let (text, erased) = personal_text(text, e.position)?;
            match author {
                Author::Customer => {}
                Author::Agent { .. } => {
                    s.human_involved = true;
                    s.first_response_at.get_or_insert(e.at);
                }
                Author::Bot => {
                    s.first_response_at.get_or_insert(e.at);
                }
            }
            message = Some(Message {
                version: e.version,
                author: author.clone(),
                text,
                erased,
                at: e.at,
                client_message_id: client_message_id.clone(),
                bot: None,
            });
        }
        V::BotAnswered { in_reply_to, text, intent, confidence, sources, .. } => {
            let (text, erased) = personal_text(text, e.position)?;
            s.first_response_at.get_or_insert(e.at);
            message = Some(Message {
                version: e.version,
                author: Author::Bot,
                text,
                erased,
                at: e.at,
                client_message_id: None,
                bot: Some(BotAnswer {
                    in_reply_to: *in_reply_to,
                    intent: intent.clone(),
                    confidence: *confidence,
                    sources: sources.clone(),
                }),
            });
        }
        V::HandoffRequested { reason, .. } => {
            s.human_involved = true;
            if s.assignee.is_none() {
                s.status = Status::Pending;
                s.handoff_reason = Some(*reason);
            }
        }
        V::AgentAssigned { agent } => {
            s.human_involved = true;
            s.assignee = Some(agent.clone());
            s.status = Status::Open;
            s.handoff_reason = None;
        }
        V::ConversationResolved { .. } => {
            s.status = Status::Resolved;
            s.resolved_at = Some(e.at);
        }
        V::ConversationReopened { .. } => {
            let waiting = s.human_involved && s.assignee.is_none();
            s.status = if waiting { Status::Pending } else { Status::Open };
            s.resolved_at = None;
        }
        V::FeedbackGiven { feedback } => {
            if let Feedback::Csat { score, comment } = feedback {
                let comment = comment.as_ref().map(|c| personal_text(c, e.position).map(|t| t.0)).transpose()?;
                s.csat = Some(Csat { score: *score, comment, at: e.at });
            }
        }
        V::TagsChanged { added, removed } => {
            s.tags.retain(|t| !removed.contains(t));
            for t in added {
                if !s.tags.contains(t) {
                    s.tags.push(t.clone());
                }
            }
            s.tags.sort();
        }
        V::NotificationSent { .. } => {}
        // Staff-only: no message (a customer searches messages), no preview;
        // the mentions it names are [`mentions`]' business.
        V::NoteAdded { .. } => {}
        V::TeamAssigned { team } => s.team = team.clone(),
        V::AgentUnassigned { .. } => {
            s.assignee = None;
            if s.human_involved && s.status == Status::Open {
                s.status = Status::Pending;
            }
        }
    }
    if let Some(m) = &message {
        s.message_count += 1;
        s.last_message = Some(preview(&m.author, &m.text, m.at));
    }
    Ok(message)
}

/// A colleague named in a private note: a reference to the note (its
/// conversation and version), never its text, so erasing the customer leaves
/// nothing to scrub here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    pub tenant: TenantId,
    /// Who was mentioned.
    pub user: UserId,
    pub conversation_id: ConversationId,
    /// The note's version in the conversation.
    pub version: u64,
    /// Who wrote the note.
    pub author: UserId,
    pub at: Timestamp,
    /// The note's log position: the mentions' order, newest first.
    pub position: u64,
}

/// The most mentions one page holds.
pub const MAX_MENTIONS_PAGE: usize = 100;

/// The mentions a conversation event makes (a `NoteAdded`'s), one per user.
pub fn mentions(e: &Opened, event: &ConversationEvent) -> Result<Vec<Mention>, ProjectionError> {
    let ConversationEvent::NoteAdded { author, mentions, .. } = event else { return Ok(vec![]) };
    let conversation = conversation_id(e)?;
    let mut out: Vec<Mention> = Vec::with_capacity(mentions.len());
    for user in mentions {
        if out.iter().any(|m| &m.user == user) {
            continue;
        }
        out.push(Mention {
            tenant: e.tenant().clone(),
            user: user.clone(),
            conversation_id: conversation.clone(),
            version: e.version,
            author: author.clone(),
            at: e.at,
            position: e.position,
        });
    }
    Ok(out)
}

fn event_name(e: &ConversationEvent) -> &'static str {
    use jamuna_domain::DomainEvent;
    e.event_type()
}

/// The customer of this summary was erased at `e` (a `UserErased`): their
/// personal content in it reads as erased. Returns false if the summary
/// already reflects `e`.
pub fn erase(s: &mut ConversationSummary, e: &Opened) -> bool {
    if s.position >= e.position {
        return false;
    }
    s.position = e.position;
    if let Some(m) = &mut s.last_message {
        m.text = Personal::ERASED_TEXT.to_owned();
    }
    if let Some(c) = &mut s.csat
        && c.comment.is_some()
    {
        c.comment = Some(Personal::ERASED_TEXT.to_owned());
    }
    true
}

/// A message whose author's content was erased.
pub fn erase_message(m: &mut Message) {
    m.text = Personal::ERASED_TEXT.to_owned();
    m.erased = true;
}

/// Does a summary belong in a view? (Shared by adapters that filter in memory.)
pub fn in_view(s: &ConversationSummary, view: &InboxView) -> bool {
    match view {
        InboxView::All => true,
        InboxView::Unassigned => s.status != Status::Resolved && s.assignee.is_none(),
        InboxView::Mine(agent) => s.status != Status::Resolved && s.assignee.as_ref() == Some(agent),
        InboxView::Pending => s.status == Status::Pending,
        InboxView::Resolved => s.status == Status::Resolved,
    }
}

/// The names statuses and channels have in stored rows and documents.
pub fn status_str(s: Status) -> &'static str {
    match s {
        Status::Open => "open",
        Status::Pending => "pending",
        Status::Resolved => "resolved",
    }
}

pub fn channel_str(c: Channel) -> &'static str {
    match c {
        Channel::Web => "web",
        Channel::Mobile => "mobile",
        Channel::Api => "api",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Fact;
    use jamuna_domain::StreamId;

    fn at(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_750_000_000 + s, 0).unwrap()
    }
    fn ev(position: u64, version: u64, event: ConversationEvent) -> (Opened, ConversationEvent) {
        let t = TenantId::parse("acme").unwrap();
        let stream = StreamId::conversation(&t, &ConversationId::parse("c1").unwrap());
        (Opened { position, stream, version, at: at(position as i64), fact: Fact::Conversation(event.clone()) }, event)
    }
    fn started() -> ConversationEvent {
        ConversationEvent::ConversationStarted {
            tenant: TenantId::parse("acme").unwrap(),
            conversation_id: ConversationId::parse("c1").unwrap(),
            customer: UserId::parse("u1").unwrap(),
            channel: Channel::Web,
        }
    }

    #[test]
    fn a_conversation_folds_and_replayed_events_change_nothing() {
        let mut s = None;
        let (e, v) = ev(1, 1, started());
        apply(&mut s, &e, &v).unwrap();
        let (e2, v2) = ev(
            2,
            2,
            ConversationEvent::MessagePosted {
                author: Author::Customer,
                text: Personal::plain("hello there"),
                client_message_id: None,
                attachments: vec![],
            },
        );
        let m = apply(&mut s, &e2, &v2).unwrap().unwrap();
        assert_eq!((m.version, m.text.as_str()), (2, "hello there"));
        let once = s.clone();
        assert_eq!(apply(&mut s, &e2, &v2).unwrap(), None);
        assert_eq!(apply(&mut s, &e, &v).unwrap(), None);
        assert_eq!(s, once);
        let (e3, v3) = ev(3, 3, ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None });
        apply(&mut s, &e3, &v3).unwrap();
        let s = s.unwrap();
        assert_eq!((s.status, s.human_involved, s.message_count, s.version), (Status::Pending, true, 1, 3));
        assert!(in_view(&s, &InboxView::Pending) && in_view(&s, &InboxView::Unassigned) && !in_view(&s, &InboxView::Resolved));
    }

    #[test]
    fn an_event_before_the_start_is_a_bad_event() {
        let mut s = None;
        let (e, v) = ev(4, 2, ConversationEvent::ConversationResolved { by: None });
        assert!(matches!(apply(&mut s, &e, &v), Err(ProjectionError::BadEvent { position: 4, .. })));
    }

    #[test]
    fn sealed_text_is_a_bad_event_not_stored_ciphertext() {
        let mut s = None;
        let (e, v) = ev(1, 1, started());
        apply(&mut s, &e, &v).unwrap();
        let (e2, v2) = ev(
            2,
            2,
            ConversationEvent::MessagePosted {
                author: Author::Customer,
                text: Personal::Sealed("xx".into()),
                client_message_id: None,
                attachments: vec![],
            },
        );
        assert!(matches!(apply(&mut s, &e2, &v2), Err(ProjectionError::BadEvent { .. })));
    }

    #[test]
    fn a_note_is_never_opened_it_only_names_mentions() {
        assert_eq!(interest(AggregateKind::Conversation, "NoteAdded"), Interest::Decode);
        assert_eq!(interest(AggregateKind::Conversation, "MessagePosted"), Interest::Open);
        let mut s = None;
        let (e, v) = ev(1, 1, started());
        apply(&mut s, &e, &v).unwrap();
        let note = ConversationEvent::NoteAdded {
            author: UserId::parse("a1").unwrap(),
            text: Personal::Sealed("still sealed".into()),
            mentions: vec![UserId::parse("a2").unwrap(), UserId::parse("a2").unwrap()],
        };
        let (e2, v2) = ev(2, 2, note);
        assert_eq!(apply(&mut s, &e2, &v2).unwrap(), None, "no message");
        let s = s.unwrap();
        assert_eq!((s.message_count, s.version, s.last_message.is_none()), (0, 2, true));
        let named = mentions(&e2, &v2).unwrap();
        assert_eq!(named.iter().map(|m| (m.user.as_str(), m.version, m.author.as_str())).collect::<Vec<_>>(), [("a2", 2, "a1")]);
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor::new(1_750_000_000_123_456, "c-1");
        assert_eq!(Cursor::parse(c.as_str()).unwrap().parts().unwrap(), (1_750_000_000_123_456, "c-1".to_owned()));
        assert!(matches!(Cursor::parse("not a cursor"), Err(StoreError::Invalid(_))));
        assert!(matches!(Cursor::parse("MTIzOmEuYg"), Err(StoreError::Invalid(_))));
    }
}
