//! The conversations read model in MongoDB: one document per conversation,
//! its messages inside, in the seed's shape:
//!
//! ```text
//! { _id: "<tenant>.conversation.<id>", sessionId, tenant,
//!   messages: [{ sender: "user" | "bot" | "agent", content, timestamp, version,
//!                erased, agentId?, clientMessageId?, intent?, confidence?, sources?, inReplyTo? }],
//!   metadata: { userId, channel, tags },
//!   createdAt, updatedAt, updatedAtUs, createdAtUs, searchText: [texts not erased],
//!   …the summary's own fields (status, assignee, first_response_at, resolved_at,
//!    last_message, csat, message_count, version, position) }
//! ```
//!
//! The mentions of private notes are documents of their own, in `mentions`
//! (references to the note, never its text).
//!
//! A batch reads the conversations it touches in one `find` and writes them
//! back in one `insert` and one `update` ([`Documents`]); a rebuild holds
//! them in memory and builds the inbox's indexes at the end.
//!
//! Message times are BSON dates (millisecond precision). Text search is a
//! case-insensitive `$regex` per word over `searchText` (FerretDB has
//! neither text indexes nor `$elemMatch` on fields), so a word matches anywhere inside a word.

use super::{
    BotAnswer, ConversationDetail, ConversationQuery, ConversationStore, ConversationSummary, Cursor, InboxView, MAX_MENTIONS_PAGE,
    Mention, Message, Page, apply, channel_str, erase, erase_message, status_str,
};
use crate::error::{ProjectionError, StoreError};
use crate::event::{Fact, Interest, Opened, ReadModel};
use crate::mongo::{Documents, MongoReadDb, Write, date, from_doc, regex_escape, to_doc};
use async_trait::async_trait;
use futures::TryStreamExt;
use jamuna_domain::conversation::{Author, Source};
use jamuna_domain::user::UserEvent;
use jamuna_domain::{AggregateKind, ClientMessageId, ConversationId, StreamId, TeamId, TenantId, UserId};
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use std::collections::HashMap;

pub const COLLECTION: &str = "conversations";
/// The mentions of private notes: `{_id: "<tenant>.<user>.<position>", tenant, user,
/// conversation_id, version, author, at, position}` (no note text).
pub const MENTIONS: &str = "mentions";

/// The conversations read model in a MongoDB database.
#[derive(Clone)]
pub struct MongoConversations {
    db: MongoReadDb,
    docs: Documents,
}

impl MongoConversations {
    /// Uses `db`, creating the indexes the inbox needs.
    pub async fn new(db: MongoReadDb) -> Result<Self, StoreError> {
        let s = Self { docs: Documents::new(db.clone()), db };
        s.indexes().await?;
        Ok(s)
    }

    /// A conversation's document as stored, by `_id` (for tests of the
    /// document shape).
    #[cfg(feature = "testing")]
    pub async fn raw_document(&self, id: &str) -> Result<Option<Document>, StoreError> {
        Ok(self.db.collection(COLLECTION).find_one(doc! {"_id": id}).await?)
    }

    async fn indexes(&self) -> Result<(), StoreError> {
        let c = self.db.collection(COLLECTION);
        for keys in [doc! {"tenant": 1, "updatedAtUs": -1, "sessionId": -1}, doc! {"tenant": 1, "customer": 1}] {
            c.create_index(IndexModel::builder().keys(keys).build()).await?;
        }
        let keys = doc! {"tenant": 1, "user": 1, "position": -1};
        self.db.collection(MENTIONS).create_index(IndexModel::builder().keys(keys).build()).await?;
        Ok(())
    }
}

fn sender(a: &Author) -> &'static str {
    match a {
        Author::Customer => "user",
        Author::Bot => "bot",
        Author::Agent { .. } => "agent",
    }
}

fn message_doc(m: &Message) -> Result<Document, StoreError> {
    let mut d =
        doc! {"sender": sender(&m.author), "content": &m.text, "timestamp": date(&m.at), "version": m.version as i64, "erased": m.erased};
    if let Author::Agent { id } = &m.author {
        d.insert("agentId", id.as_str());
    }
    if let Some(c) = &m.client_message_id {
        d.insert("clientMessageId", c.as_str());
    }
    if let Some(b) = &m.bot {
        d.insert("inReplyTo", b.in_reply_to as i64);
        d.insert("intent", b.intent.clone().map_or(Bson::Null, Bson::String));
        d.insert("confidence", f64::from(b.confidence));
        let sources: Vec<Bson> = b.sources.iter().map(|s| to_doc(s).map(Bson::Document)).collect::<Result<_, _>>()?;
        d.insert("sources", sources);
    }
    Ok(d)
}

fn message_from(d: &Document) -> Result<Message, StoreError> {
    let bad = |what: &str| StoreError::Internal(format!("a stored message has no valid {what}").into());
    let author = match d.get_str("sender").map_err(|_| bad("sender"))? {
        "user" => Author::Customer,
        "bot" => Author::Bot,
        "agent" => Author::Agent { id: UserId::parse(d.get_str("agentId").map_err(|_| bad("agentId"))?).map_err(StoreError::internal)? },
        _ => return Err(bad("sender")),
    };
    let at = d.get_datetime("timestamp").map_err(|_| bad("timestamp"))?.timestamp_millis();
    let at = chrono::DateTime::from_timestamp_millis(at).ok_or_else(|| bad("timestamp"))?;
    let bot = match d.get_i64("inReplyTo") {
        Ok(in_reply_to) => {
            let sources = d.get_array("sources").map_err(|_| bad("sources"))?;
            let sources: Vec<Source> = sources
                .iter()
                .map(|s| s.as_document().cloned().ok_or_else(|| bad("source")).and_then(from_doc))
                .collect::<Result<_, _>>()?;
            Some(BotAnswer {
                in_reply_to: in_reply_to.max(0) as u64,
                intent: d.get_str("intent").ok().map(str::to_owned),
                confidence: d.get_f64("confidence").map_err(|_| bad("confidence"))? as f32,
                sources,
            })
        }
        Err(_) => None,
    };
    Ok(Message {
        version: d.get_i64("version").map_err(|_| bad("version"))?.max(0) as u64,
        author,
        text: d.get_str("content").map_err(|_| bad("content"))?.to_owned(),
        erased: d.get_bool("erased").map_err(|_| bad("erased"))?,
        at,
        client_message_id: d.get_str("clientMessageId").ok().map(ClientMessageId::parse).transpose().map_err(StoreError::internal)?,
        bot,
    })
}

fn document(s: &ConversationSummary, messages: &[Message]) -> Result<Document, StoreError> {
    let mut d = to_doc(s)?;
    let stream = StreamId::conversation(&s.tenant, &s.id).to_string();
    d.insert("_id", stream);
    d.insert("sessionId", s.id.as_str());
    d.insert("messages", messages.iter().map(|m| message_doc(m).map(Bson::Document)).collect::<Result<Vec<_>, _>>()?);
    // What text search looks at: the texts that are not erased.
    d.insert("searchText", messages.iter().filter(|m| !m.erased).map(|m| m.text.as_str()).collect::<Vec<_>>());
    let tags: Vec<&str> = s.tags.iter().map(|t| t.as_str()).collect();
    d.insert("metadata", doc! {"userId": s.customer.as_str(), "channel": channel_str(s.channel), "tags": tags});
    d.insert("createdAt", date(&s.created_at));
    d.insert("updatedAt", date(&s.updated_at));
    d.insert("createdAtUs", s.created_at.timestamp_micros());
    d.insert("updatedAtUs", s.updated_at.timestamp_micros());
    Ok(d)
}

fn parse(d: Document) -> Result<(ConversationSummary, Vec<Message>), StoreError> {
    let messages = match d.get_array("messages") {
        Ok(ms) => ms
            .iter()
            .map(|m| m.as_document().ok_or_else(|| StoreError::Internal("a message is not a document".into())).and_then(message_from))
            .collect::<Result<_, _>>()?,
        Err(_) => vec![],
    };
    Ok((from_doc(d)?, messages))
}

/// A conversation document being folded.
struct Slot {
    summary: Option<ConversationSummary>,
    messages: Vec<Message>,
    /// The position it was read at; `None`: not stored yet.
    loaded: Option<i64>,
    dirty: bool,
}

impl MongoConversations {
    /// Adds the documents `found` to `slots` (those already there are newer).
    fn slot_in(found: Vec<Document>, slots: &mut HashMap<String, Slot>) -> Result<(), StoreError> {
        for d in found {
            let id = d.get_str("_id").map_err(StoreError::internal)?.to_owned();
            if slots.contains_key(&id) {
                continue;
            }
            let (summary, messages) = parse(d)?;
            let loaded = Some(summary.position as i64);
            slots.insert(id, Slot { summary: Some(summary), messages, loaded, dirty: false });
        }
        Ok(())
    }

    async fn apply_batch(&self, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
        let mut applied = self.docs.applied(projection).await?;
        if through <= applied {
            return Ok(());
        }
        let mut slots: HashMap<String, Slot> = HashMap::new();
        let mut mentions: Vec<(String, Mention)> = Vec::new();
        let ids = events.iter().filter(|e| e.position > applied && matches!(e.fact, Fact::Conversation(_))).map(|e| e.stream.to_string());
        Self::slot_in(self.docs.load(COLLECTION, ids).await?, &mut slots)?;
        for e in &events {
            if e.position <= applied {
                continue;
            }
            applied = e.position;
            match &e.fact {
                Fact::Conversation(event) => {
                    let slot =
                        slots.entry(e.stream.to_string()).or_insert(Slot { summary: None, messages: vec![], loaded: None, dirty: false });
                    if let Some(m) = apply(&mut slot.summary, e, event)? {
                        slot.messages.push(m);
                    }
                    slot.dirty = true;
                    for m in super::mentions(e, event)? {
                        mentions.push((format!("{}.{}.{}", m.tenant, m.user, m.position), m));
                    }
                }
                Fact::User(UserEvent::UserErased) => {
                    let (tenant, customer) = (e.tenant().clone(), e.stream.id().to_owned());
                    Self::slot_in(
                        self.docs.load_where(COLLECTION, &[("tenant", tenant.as_str()), ("customer", &customer)]).await?,
                        &mut slots,
                    )?;
                    for slot in slots.values_mut() {
                        if let Some(s) = &mut slot.summary
                            && s.tenant == tenant
                            && s.customer.as_str() == customer
                            && erase(s, e)
                        {
                            slot.messages.iter_mut().for_each(erase_message);
                            slot.dirty = true;
                        }
                    }
                }
                _ => {}
            }
        }
        let mut writes = Vec::new();
        for (id, slot) in slots {
            if let (true, Some(summary)) = (slot.dirty, slot.summary) {
                writes.push(Write { doc: document(&summary, &slot.messages)?, id, loaded: slot.loaded });
            }
        }
        self.docs.write(COLLECTION, writes).await?;
        // A mention never changes: one stored before (a batch redelivered) stays as it is.
        let stored: Vec<String> = self
            .docs
            .load(MENTIONS, mentions.iter().map(|(id, _)| id.clone()))
            .await?
            .iter()
            .filter_map(|d| d.get_str("_id").ok().map(str::to_owned))
            .collect();
        let mut writes = Vec::new();
        for (id, m) in mentions.into_iter().filter(|(id, _)| !stored.contains(id)) {
            let mut doc = to_doc(&m)?;
            doc.insert("_id", id.as_str());
            writes.push(Write { id, loaded: None, doc });
        }
        self.docs.write(MENTIONS, writes).await?;
        self.docs.commit(projection, through).await?;
        Ok(())
    }
}

#[async_trait]
impl ReadModel for MongoConversations {
    fn interest(&self, kind: AggregateKind, event_type: &str) -> Interest {
        super::interest(kind, event_type)
    }

    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        self.db.checkpoint(projection).await
    }

    async fn apply(&self, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
        self.apply_batch(projection, events, through).await
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.reset(projection, &[COLLECTION, MENTIONS]).await?;
        self.indexes().await
    }

    /// Drops the model and holds its documents in memory until the end;
    /// the indexes are built then.
    async fn begin_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.begin_rebuild(projection, &[COLLECTION, MENTIONS]).await
    }

    async fn end_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.end_rebuild(projection).await?;
        self.indexes().await
    }
}

#[async_trait]
impl ConversationStore for MongoConversations {
    async fn conversation(&self, tenant: &TenantId, id: &ConversationId) -> Result<Option<ConversationDetail>, StoreError> {
        let key = StreamId::conversation(tenant, id).to_string();
        let Some(d) = self.db.collection(COLLECTION).find_one(doc! {"_id": key}).await? else { return Ok(None) };
        let (summary, messages) = parse(d)?;
        Ok(Some(ConversationDetail { summary, messages }))
    }

    async fn mentions(&self, tenant: &TenantId, user: &UserId, before: Option<u64>, limit: usize) -> Result<Vec<Mention>, StoreError> {
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let limit = limit.clamp(1, MAX_MENTIONS_PAGE) as i64;
        let filter = doc! {"tenant": tenant.as_str(), "user": user.as_str(), "position": {"$lt": before}};
        let docs = self.db.find_all(MENTIONS, filter, doc! {"position": -1}, Some(limit)).await?;
        docs.into_iter()
            .map(|mut d| {
                d.remove("_id");
                from_doc(d)
            })
            .collect()
    }

    async fn waiting_by_team(&self, tenant: &TenantId) -> Result<Vec<(Option<TeamId>, u64)>, StoreError> {
        let filter = doc! {"tenant": tenant.as_str(), "status": "pending", "assignee": Bson::Null};
        let docs: Vec<Document> =
            self.db.collection(COLLECTION).find(filter).projection(doc! {"team": 1, "_id": 0}).await?.try_collect().await?;
        let mut counts: std::collections::BTreeMap<Option<TeamId>, u64> = std::collections::BTreeMap::new();
        for d in docs {
            let team = d.get_str("team").ok().map(TeamId::parse).transpose().map_err(StoreError::internal)?;
            *counts.entry(team).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    async fn open_count(&self) -> Result<u64, StoreError> {
        Ok(self.db.collection(COLLECTION).count_documents(doc! {"status": {"$ne": "resolved"}}).await?)
    }

    async fn list(&self, q: &ConversationQuery) -> Result<Page<ConversationSummary>, StoreError> {
        let tenant = q.tenant()?;
        let mut and: Vec<Document> = vec![doc! {"tenant": tenant.as_str()}];
        if let Some(c) = &q.customer {
            and.push(doc! {"customer": c.as_str()});
        }
        match &q.view {
            InboxView::All => {}
            InboxView::Unassigned => and.push(doc! {"status": {"$ne": "resolved"}, "assignee": Bson::Null}),
            InboxView::Mine(agent) => and.push(doc! {"status": {"$ne": "resolved"}, "assignee": agent.as_str()}),
            InboxView::Pending => and.push(doc! {"status": "pending"}),
            InboxView::Resolved => and.push(doc! {"status": "resolved"}),
        }
        if let Some(s) = q.status {
            and.push(doc! {"status": status_str(s)});
        }
        if let Some(team) = &q.team {
            and.push(doc! {"team": team.as_str()});
        }
        if let Some(ch) = q.channel {
            and.push(doc! {"metadata.channel": channel_str(ch)});
        }
        if let Some(t) = &q.tag {
            and.push(doc! {"metadata.tags": t.as_str()});
        }
        if let Some(from) = &q.created_from {
            and.push(doc! {"createdAtUs": {"$gte": from.timestamp_micros()}});
        }
        if let Some(to) = &q.created_to {
            and.push(doc! {"createdAtUs": {"$lt": to.timestamp_micros()}});
        }
        for w in q.words() {
            and.push(doc! {"searchText": {"$regex": regex_escape(&w), "$options": "i"}});
        }
        if let Some(cursor) = &q.cursor {
            let (us, id) = cursor.parts()?;
            and.push(doc! {"$or": [{"updatedAtUs": {"$lt": us}}, {"updatedAtUs": us, "sessionId": {"$lt": id}}]});
        }
        let size = q.page_size();
        let docs =
            self.db.find_all(COLLECTION, doc! {"$and": and}, doc! {"updatedAtUs": -1, "sessionId": -1}, Some(size as i64 + 1)).await?;
        let mut items = Vec::new();
        let mut next = None;
        for d in docs {
            if items.len() == size {
                next = items.last().map(|s: &ConversationSummary| Cursor::new(s.updated_at.timestamp_micros(), s.id.as_str()));
                break;
            }
            let mut d = d;
            d.remove("messages");
            d.remove("searchText");
            items.push(from_doc(d)?);
        }
        Ok(Page { items, next })
    }
}
