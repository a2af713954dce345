//! What a customer sees: the one place that turns what the gateway knows
//! about a conversation into what its customer may read.
//!
//! Staff (agents and admins) see events, summaries and details whole. A
//! customer sees an allow-list of each, built field by field here, so a field
//! added to an event later stays with staff until it is added below (and a
//! new event type does not compile until it is given a customer view):
//!
//! * a message's attachments (id, name, type, size) are shown: they are
//!   part of what was said to the customer;
//! * staff-only events (`TagsChanged`, `NoteAdded`, `NotificationSent`) are not sent at all: a customer's
//!   versions have gaps, which resume tolerates (it asks for what follows the
//!   last version it saw);
//! * the bot's intent, confidence and its sources' scores, why the bot
//!   answered or handed off (`why`: which score decided, and the scores),
//!   the handoff's reason, tags, the first-response time and log positions
//!   are left out;
//! * a staff member's user id becomes an alias, the same for one agent
//!   within one conversation on every replica and REST call, and meaningless
//!   elsewhere (a keyed hash: [`CustomerView::alias`]); the conversation
//!   `agents` list maps aliases to display names.
//!
//! Used by the REST handlers (`/api/v1/conversations…`) and the WebSocket
//! session ([`crate::ws::session`]) alike.

use crate::AppState;
use crate::auth::Caller;
use crate::ws::hub::Pushed;
use jamuna_domain::attachment::Attachment;
use jamuna_domain::conversation::{Author, ConversationEvent, Source};
use jamuna_domain::{TenantId, UserId};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The key of the agents' aliases, derived from the secret every replica
/// shares (the JWT secret), so all replicas alias alike.
pub fn derive_key(secret: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, b"jamuna customer view: agent aliases v1")
}

/// The customer view for one customer (`viewer`) of one tenant.
pub struct CustomerView<'a> {
    key: &'a [u8; 32],
    tenant: &'a TenantId,
    viewer: &'a UserId,
}

impl<'a> CustomerView<'a> {
    pub fn new(key: &'a [u8; 32], tenant: &'a TenantId, viewer: &'a UserId) -> Self {
        Self { key, tenant, viewer }
    }

    /// The name a customer knows a staff member by in one conversation:
    /// `agent-` and 20 hex digits of a keyed hash of tenant, conversation and user.
    pub fn alias(&self, conversation: &str, user: &str) -> String {
        let mac = hmac_sha256(self.key, format!("{}\n{conversation}\n{user}", self.tenant).as_bytes());
        let hex: String = mac[..10].iter().map(|b| format!("{b:02x}")).collect();
        format!("agent-{hex}")
    }

    /// A user id as the customer may see it: their own as is, anyone else's aliased.
    pub fn person(&self, conversation: &str, user: &str) -> String {
        if user == self.viewer.as_str() { user.to_owned() } else { self.alias(conversation, user) }
    }

    /// The customer's view of an event, or `None` for a staff-only one.
    pub fn event(&self, conversation: &str, event: &ConversationEvent) -> Option<Value> {
        use ConversationEvent as E;
        let person = |u: &UserId| self.person(conversation, u.as_str());
        Some(match event {
            E::ConversationStarted { tenant, conversation_id, customer, channel } => json!({
                "type": "ConversationStarted", "tenant": tenant, "conversation_id": conversation_id,
                "customer": person(customer), "channel": channel,
            }),
            E::MessagePosted { author, text, client_message_id, attachments } => json!({
                "type": "MessagePosted", "author": self.author(conversation, author), "text": text,
                "client_message_id": client_message_id,
                "attachments": attachments.iter().map(attachment).collect::<Vec<_>>(),
            }),
            E::BotAnswered { in_reply_to, text, intent: _, confidence: _, sources, why: _ } => json!({
                "type": "BotAnswered", "in_reply_to": in_reply_to, "text": text,
                "sources": sources.iter().map(source).collect::<Vec<_>>(),
            }),
            E::HandoffRequested { reason: _, why: _ } => json!({"type": "HandoffRequested"}),
            E::AgentAssigned { agent } => json!({"type": "AgentAssigned", "agent": person(agent)}),
            E::ConversationResolved { by } => json!({"type": "ConversationResolved", "by": by.as_ref().map(person)}),
            E::ConversationReopened { by } => json!({"type": "ConversationReopened", "by": by.as_ref().map(person)}),
            E::FeedbackGiven { feedback } => json!({"type": "FeedbackGiven", "feedback": feedback}),
            E::TagsChanged { .. } | E::NoteAdded { .. } | E::NotificationSent { .. } => return None,
            // Which team works a conversation is staff business.
            E::TeamAssigned { .. } => return None,
            // The customer learns that nobody has the conversation any more, not who let it go.
            E::AgentUnassigned { by: _ } => json!({"type": "AgentUnassigned"}),
        })
    }

    fn author(&self, conversation: &str, author: &Author) -> Value {
        match author {
            Author::Agent { id } => json!({"kind": "agent", "id": self.alias(conversation, id.as_str())}),
            other => serde_json::to_value(other).unwrap_or(Value::Null),
        }
    }

    /// The customer's `event` frame of a pushed event (no log position), or
    /// `None` for a staff-only event.
    pub fn frame(&self, pushed: &Pushed) -> Option<String> {
        let conversation = pushed.stream.id();
        let event = self.event(conversation, &pushed.event)?;
        Some(
            json!({
                "type": "event", "conversation_id": conversation, "version": pushed.version,
                "occurred_at": pushed.occurred_at, "event": event,
            })
            .to_string(),
        )
    }

    /// The customer's view of a conversation summary (the read model's JSON).
    pub fn summary(&self, staff: &Value) -> Value {
        const KEPT: [&str; 11] = [
            "id",
            "tenant",
            "channel",
            "status",
            "human_involved",
            "created_at",
            "updated_at",
            "resolved_at",
            "message_count",
            "csat",
            "version",
        ];
        let conversation = staff["id"].as_str().unwrap_or_default();
        let mut out: Map<String, Value> = KEPT.iter().map(|k| ((*k).to_owned(), staff[*k].clone())).collect();
        let id = |v: &Value| v.as_str().map_or(Value::Null, |u| Value::String(self.person(conversation, u)));
        out.insert("customer".into(), id(&staff["customer"]));
        out.insert("assignee".into(), id(&staff["assignee"]));
        let last = &staff["last_message"];
        let last = if last.is_object() {
            let author = match last["author"]["kind"].as_str() {
                Some("agent") => json!({"kind": "agent", "id": id(&last["author"]["id"])}),
                _ => json!({"kind": last["author"]["kind"]}),
            };
            json!({"author": author, "text": last["text"], "at": last["at"]})
        } else {
            Value::Null
        };
        out.insert("last_message".into(), last);
        Value::Object(out)
    }
}

/// An attachment as a customer sees it: all of it (it is part of the message).
fn attachment(a: &Attachment) -> Value {
    json!({"id": a.id, "name": a.name, "content_type": a.content_type, "size": a.size})
}

/// A source as a customer sees it: which article and passage, not its score.
fn source(s: &Source) -> Value {
    json!({"article_id": s.article_id, "title": s.title, "passage": s.passage})
}

/// The view `caller` gets: `None` for staff (they see everything), the
/// customer view for anyone else.
pub fn for_caller<'a>(state: &'a AppState, caller: &'a Caller) -> Option<CustomerView<'a>> {
    (!caller.is_staff()).then(|| CustomerView::new(state.tokens.view_key(), &caller.tenant, &caller.user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamuna_domain::conversation::{Basis, Channel, DecisionScores, DecisionWhy, HandoffReason, Tag};
    use jamuna_domain::{ConversationId, Personal};

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        k.sort_unstable();
        k
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn a_customer_sees_customer_things() {
        let key = derive_key(b"0123456789abcdef0123456789abcdef");
        let (tenant, me, agent) = (TenantId::parse("acme").unwrap(), UserId::parse("cust").unwrap(), UserId::parse("agent").unwrap());
        let v = CustomerView::new(&key, &tenant, &me);
        let answered = ConversationEvent::BotAnswered {
            in_reply_to: 2,
            text: Personal::plain("Cards arrive in 5 days."),
            intent: Some("card_arrival".into()),
            confidence: 0.9,
            sources: vec![Source {
                article_id: jamuna_domain::ArticleId::parse("a1").unwrap(),
                title: "Cards".into(),
                passage: "5 days".into(),
                score: 0.8,
            }],
            why: Some(DecisionWhy::new(
                Basis::IntentHead,
                DecisionScores { confidence: Some(0.9), threshold: Some(0.56), ..DecisionScores::default() },
            )),
        };
        let e = v.event("c1", &answered).unwrap();
        assert_eq!(keys(&e), ["in_reply_to", "sources", "text", "type"]);
        assert_eq!(keys(&e["sources"][0]), ["article_id", "passage", "title"]);
        let tags = ConversationEvent::TagsChanged { added: vec![Tag::parse("vip").unwrap()], removed: vec![] };
        assert_eq!(v.event("c1", &tags), None, "staff-only");
        let note = ConversationEvent::NoteAdded { author: agent.clone(), text: Personal::plain("VIP"), mentions: vec![agent.clone()] };
        assert_eq!(v.event("c1", &note), None, "a private note is staff-only");
        assert_eq!(
            v.event("c1", &ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None }),
            Some(json!({"type": "HandoffRequested"}))
        );
        let why = DecisionWhy::new(Basis::OutOfScopeDistance, DecisionScores { mahalanobis: Some(3.5), ..DecisionScores::default() });
        assert_eq!(
            v.event("c1", &ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: Some(why) }),
            Some(json!({"type": "HandoffRequested"})),
            "why the bot handed off is staff-only"
        );
        let why = DecisionWhy::new(Basis::OutOfScopeExample, DecisionScores { confidence: Some(0.8), ..DecisionScores::default() });
        assert_eq!(
            v.event("c1", &ConversationEvent::HandoffRequested { reason: HandoffReason::OutOfScope, why: Some(why) }),
            Some(json!({"type": "HandoffRequested"})),
            "that the tenant's examples send it to a person is staff-only too"
        );
        let assigned = v.event("c1", &ConversationEvent::AgentAssigned { agent: agent.clone() }).unwrap();
        let alias = assigned["agent"].as_str().unwrap().to_owned();
        assert!(alias.starts_with("agent-") && !alias.contains("agent-agent"), "{alias}");
        assert_eq!(alias, v.alias("c1", "agent"), "stable");
        assert_ne!(alias, v.alias("c2", "agent"), "per conversation");
        assert_ne!(alias, CustomerView::new(&derive_key(&[7; 32]), &tenant, &me).alias("c1", "agent"), "keyed");
        let started = ConversationEvent::ConversationStarted {
            tenant: tenant.clone(),
            conversation_id: ConversationId::parse("c1").unwrap(),
            customer: me.clone(),
            channel: Channel::Web,
        };
        assert_eq!(v.event("c1", &started).unwrap()["customer"], "cust", "the customer's own id");
        let resolved = v.event("c1", &ConversationEvent::ConversationResolved { by: Some(agent.clone()) }).unwrap();
        assert_eq!(resolved["by"], json!(alias));
        let with_file = ConversationEvent::MessagePosted {
            author: Author::Agent { id: agent },
            text: Personal::plain(""),
            client_message_id: None,
            attachments: vec![Attachment {
                id: jamuna_domain::AttachmentId::parse("f1").unwrap(),
                name: Personal::plain("label.pdf"),
                content_type: jamuna_domain::attachment::ContentType::Pdf,
                size: 2048,
            }],
        };
        let e = v.event("c1", &with_file).unwrap();
        assert_eq!(keys(&e), ["attachments", "author", "client_message_id", "text", "type"]);
        assert_eq!(e["attachments"], json!([{"id": "f1", "name": "label.pdf", "content_type": "application/pdf", "size": 2048}]));
    }

    #[test]
    fn a_customer_summary_keeps_only_the_listed_fields() {
        let key = derive_key(&[1; 32]);
        let (tenant, me) = (TenantId::parse("acme").unwrap(), UserId::parse("cust").unwrap());
        let v = CustomerView::new(&key, &tenant, &me);
        let staff = json!({
            "tenant": "acme", "id": "c1", "customer": "cust", "channel": "web", "status": "open", "assignee": "agent",
            "handoff_reason": "low_confidence", "human_involved": true, "tags": ["vip"], "created_at": "t", "updated_at": "t",
            "first_response_at": "t", "resolved_at": null, "message_count": 3, "csat": null, "version": 5, "position": 99,
            "last_message": {"author": {"kind": "agent", "id": "agent"}, "text": "hi", "at": "t"},
        });
        let s = v.summary(&staff);
        assert_eq!(
            keys(&s),
            [
                "assignee",
                "channel",
                "created_at",
                "csat",
                "customer",
                "human_involved",
                "id",
                "last_message",
                "message_count",
                "resolved_at",
                "status",
                "tenant",
                "updated_at",
                "version"
            ]
        );
        assert_eq!(s["assignee"], json!(v.alias("c1", "agent")));
        assert_eq!(s["last_message"]["author"], json!({"kind": "agent", "id": v.alias("c1", "agent")}));
        assert_eq!(s["customer"], "cust");
    }
}
