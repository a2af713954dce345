//! Customers see customer things (issue 16, finding 10): what a customer can
//! read over REST and the socket, key by key, after an agent tagged the
//! conversation, took it over and wrote, and the bot answered with an intent;
//! the seed socket's client id taken by a second client; the reason an
//! agent's handoff is recorded with.

use crate::app::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const QUESTION: &str = "My new card has not arrived yet, when will it come?";

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap_or_else(|| panic!("an object: {v}")).keys().cloned().collect();
    k.sort();
    k
}

fn set(k: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = k.iter().map(|s| (*s).to_owned()).collect();
    k.sort();
    k
}

fn is_event(f: &Value, conversation: &str) -> bool {
    f["type"] == "event" && f["conversation_id"] == conversation
}

/// Checks one event frame a customer received, field by field, and that no
/// staff user id is in it.
fn assert_customer_frame(f: &Value, staff_ids: &[&str]) {
    assert_eq!(keys(f), set(&["type", "conversation_id", "version", "occurred_at", "event"]), "frame {f}");
    let e = &f["event"];
    let expected: &[&str] = match e["type"].as_str() {
        Some("ConversationStarted") => &["type", "tenant", "conversation_id", "customer", "channel"],
        Some("MessagePosted") => &["type", "author", "text", "client_message_id", "attachments"],
        Some("BotAnswered") => &["type", "in_reply_to", "text", "sources"],
        Some("HandoffRequested") => &["type"],
        Some("AgentAssigned") => &["type", "agent"],
        other => panic!("a customer got a {other:?} event: {f}"),
    };
    assert_eq!(keys(e), set(expected), "event {e}");
    if e["type"] == "MessagePosted" {
        match e["author"]["kind"].as_str() {
            Some("agent") => assert_eq!(keys(&e["author"]), set(&["kind", "id"]), "{e}"),
            _ => assert_eq!(keys(&e["author"]), set(&["kind"]), "{e}"),
        }
        for a in e["attachments"].as_array().expect("attachments") {
            assert_eq!(keys(a), set(&["id", "name", "content_type", "size"]), "attachment {a}");
        }
    }
    if e["type"] == "BotAnswered" {
        for s in e["sources"].as_array().expect("sources") {
            assert_eq!(keys(s), set(&["article_id", "title", "passage"]), "source {s}");
        }
    }
    let text = f.to_string();
    for id in staff_ids {
        assert!(!text.contains(id), "a staff user id ({id}) reached the customer: {f}");
    }
}

#[tokio::test]
async fn a_customer_sees_only_customer_fields_over_rest_and_the_socket() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (_, me) = app.get("/api/v1/users/me", Some(&admin)).await;
    let admin_id = me["id"].as_str().expect("the admin's id").to_owned();
    let (visitor, visitor_id) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;
    let path = |p: &str| format!("/api/v1/conversations/{id}{p}");

    let mut customer = app.socket(&visitor).await;
    send(&mut customer, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    // A greeting (answered with the intent `greeting`), then a question (answered from the KB, with sources).
    let mut frames = vec![];
    for (cmid, text) in [("q1", "Hello"), ("q2", QUESTION)] {
        let (s, body) = app.post(&path("/messages"), Some(&visitor), json!({"client_message_id": cmid, "text": text})).await;
        assert_eq!(s, 201, "{body}");
        assert_eq!(keys(&body), set(&["conversation_id", "client_message_id", "version", "duplicate", "position"]));
        assert!(body["position"].is_null(), "a log position is for staff: {body}");
        loop {
            let f = frame_where(&mut customer, |f| is_event(f, &id)).await;
            let answered = f["event"]["type"] == "BotAnswered";
            frames.push(f);
            if answered {
                break;
            }
        }
    }

    // Staff: a tag, a take-over, an assignment and a reply; and they type.
    let mut agent = app.socket(&admin).await;
    send(&mut agent, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    let (s, body) = app.post(&path("/tags"), Some(&admin), json!({"add": ["vip-risk"]})).await;
    assert_eq!(s, 200, "{body}");
    let tagged_at = body["version"].as_u64().expect("the tag's version");
    for (p, body) in
        [("/handoff", json!({})), ("/assign", json!({})), ("/messages", json!({"client_message_id": "a1", "text": "I'm on it."}))]
    {
        let (s, b) = app.post(&path(p), Some(&admin), body).await;
        assert!(s == 200 || s == 201, "{p}: {s} {b}");
    }
    loop {
        let f = frame_where(&mut customer, |f| is_event(f, &id)).await;
        let done = f["event"]["type"] == "MessagePosted" && f["event"]["author"]["kind"] == "agent";
        frames.push(f);
        if done {
            break;
        }
    }
    send(&mut agent, json!({"type": "typing", "conversation_id": id, "typing": true})).await;
    let typing = frame_where(&mut customer, |f| f["type"] == "typing").await;
    assert_eq!(keys(&typing), set(&["type", "conversation_id", "user_id", "role", "typing"]));

    // Staff still see everything.
    let (s, staff) = app.get(&path(""), Some(&admin)).await;
    assert_eq!(s, 200, "{staff}");
    assert_eq!(staff["tags"], json!(["vip-risk"]));
    assert_eq!(staff["assignee"], json!(admin_id));
    let staff_events = staff["events"].as_array().expect("events");
    let answers: Vec<&Value> = staff_events.iter().filter(|f| f["event"]["type"] == "BotAnswered").collect();
    assert!(answers.iter().any(|a| a["event"]["intent"] == "greeting"), "the bot answered with an intent: {answers:?}");
    assert!(answers.iter().any(|a| a["event"]["sources"][0]["score"].is_number()), "and from the KB: {answers:?}");
    assert!(answers.iter().all(|a| a["event"]["confidence"].is_number() && a["position"].is_number()));
    let sourced = frames.iter().filter(|f| f["event"]["type"] == "BotAnswered").any(|f| f["event"]["sources"][0].is_object());
    assert!(sourced, "the customer sees the sources (without scores)");
    assert!(staff_events.iter().any(|f| f["event"]["type"] == "TagsChanged"));

    // The socket: every frame field by field, the tag's version skipped.
    let alias = typing["user_id"].as_str().expect("the agent's alias").to_owned();
    assert_ne!(alias, admin_id);
    let staff_ids = [admin_id.as_str(), ADMIN_EMAIL];
    for f in &frames {
        assert_customer_frame(f, &staff_ids);
    }
    let versions: Vec<u64> = frames.iter().filter_map(|f| f["version"].as_u64()).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(!versions.contains(&tagged_at), "the tags' event was pushed: {versions:?}");
    assert_eq!(versions.len(), staff_events.len() - 1, "every event but the tags'");
    let assigned = frames.iter().find(|f| f["event"]["type"] == "AgentAssigned").expect("assigned");
    assert_eq!(assigned["event"]["agent"], json!(alias), "one alias for the agent in the conversation");

    // REST detail: the same frames, and the conversation field by field.
    let (s, detail) = app.get(&path(""), Some(&visitor)).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(
        keys(&detail),
        set(&["id", "customer", "channel", "status", "assignee", "human_involved", "csat", "version", "agents", "events"])
    );
    assert_eq!(detail["customer"], json!(visitor_id));
    assert_eq!(detail["assignee"], json!(alias));
    assert_eq!(detail["events"], json!(frames), "REST and the socket show a customer the same");
    let agents = detail["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 1, "{detail}");
    assert_eq!(keys(&agents[0]), set(&["id", "name"]));
    assert_eq!(agents[0]["id"], json!(alias));
    assert!(!detail.to_string().contains(&admin_id), "{detail}");

    // REST list: the summary field by field.
    let (s, list) = app.get("/api/v1/conversations", Some(&visitor)).await;
    assert_eq!(s, 200, "{list}");
    let item = &list["items"][0];
    assert_eq!(
        keys(item),
        set(&[
            "id",
            "tenant",
            "customer",
            "channel",
            "status",
            "assignee",
            "human_involved",
            "created_at",
            "updated_at",
            "resolved_at",
            "last_message",
            "message_count",
            "csat",
            "version",
        ])
    );
    if item["last_message"].is_object() {
        assert_eq!(keys(&item["last_message"]), set(&["author", "text", "at"]));
    }
    assert!(!list.to_string().contains(&admin_id) && !list.to_string().contains("vip-risk"), "{list}");
    // Nor can a customer learn a tag by filtering on it.
    let (s, body) = app.get("/api/v1/conversations?tag=vip-risk", Some(&visitor)).await;
    assert_eq!(s, 403, "a customer filtered by a staff tag: {body}");

    // Resume over the gap: after the version before the tags', the next one after them.
    let mut again = app.socket(&visitor).await;
    send(&mut again, json!({"type": "subscribe", "conversation_id": id, "after_version": tagged_at - 1})).await;
    let next = frame_where(&mut again, |f| is_event(f, &id)).await;
    assert_eq!(next["version"].as_u64(), Some(tagged_at + 1), "{next}");
}

#[tokio::test]
async fn an_agents_handoff_is_recorded_as_taken_over_and_a_customers_as_asked() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let reason = |detail: &Value| {
        let events = detail["events"].as_array().cloned().unwrap_or_default();
        events.iter().find(|f| f["event"]["type"] == "HandoffRequested").map(|f| f["event"]["reason"].clone())
    };
    for (by, expected) in [("agent", "agent_took_over"), ("customer", "customer_asked")] {
        let (visitor, _) = app.visitor().await;
        let id = app.start_conversation(&visitor).await;
        let token = if by == "agent" { &admin } else { &visitor };
        let (s, body) = app.post(&format!("/api/v1/conversations/{id}/handoff"), Some(token), json!({})).await;
        assert_eq!(s, 200, "{body}");
        let (_, detail) = app.get(&format!("/api/v1/conversations/{id}"), Some(&admin)).await;
        assert_eq!(reason(&detail), Some(json!(expected)), "a handoff by the {by}: {detail}");
    }
}

/// Sends one text on a seed socket and waits for its reply.
async fn ask(ws: &mut Ws, text: &str) -> String {
    ws.send(Message::Text(text.into())).await.expect("send");
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("a reply").expect("open").expect("ok");
        match msg {
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The conversations (ids) whose messages contain `word`, as staff find them.
async fn found(app: &App, admin: &str, word: &str) -> Vec<String> {
    for _ in 0..100 {
        let (s, page) = app.get(&format!("/api/v1/conversations?q={word}"), Some(admin)).await;
        assert_eq!(s, 200, "{page}");
        let ids: Vec<String> = page["items"].as_array().into_iter().flatten().filter_map(|i| i["id"].as_str().map(str::to_owned)).collect();
        if !ids.is_empty() {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no conversation with {word:?}")
}

#[tokio::test]
async fn a_second_seed_client_with_the_same_id_does_not_get_the_first_ones_conversation() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (mut first, _) = tokio_tungstenite::connect_async(app.ws_url("/ws/shared")).await.expect("connect");
    assert!(!ask(&mut first, "alphaword where is my card?").await.trim().is_empty());
    // Another client picks the same id, while the first is connected and after.
    let (mut second, _) = tokio_tungstenite::connect_async(app.ws_url("/ws/shared")).await.expect("connect");
    assert!(!ask(&mut second, "bravoword hello").await.trim().is_empty());
    drop(first);
    let (mut third, _) = tokio_tungstenite::connect_async(app.ws_url("/ws/shared")).await.expect("connect");
    assert!(!ask(&mut third, "charlieword hello").await.trim().is_empty());

    let (a, b, c) =
        (found(&app, &admin, "alphaword").await, found(&app, &admin, "bravoword").await, found(&app, &admin, "charlieword").await);
    assert_eq!((a.len(), b.len(), c.len()), (1, 1, 1));
    assert_ne!(a, b, "the second client wrote into the first one's conversation");
    assert_ne!(a, c, "a later client with the same id wrote into the first one's conversation");
    let (_, detail) = app.get(&format!("/api/v1/conversations/{}", a[0]), Some(&admin)).await;
    let texts: Vec<&str> = detail["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["event"]["type"] == "MessagePosted")
        .filter_map(|f| f["event"]["text"].as_str())
        .collect();
    assert_eq!(texts, ["alphaword where is my card?"], "{detail}");
}

/// Why the bot decided (issue 18): agents see which score decided each bot
/// answer and bot handoff; a customer sees none of it, over the socket or REST.
#[tokio::test]
async fn why_the_bot_decided_is_for_agents_only() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (visitor, _) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;
    let path = |p: &str| format!("/api/v1/conversations/{id}{p}");
    let mut customer = app.socket(&visitor).await;
    send(&mut customer, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;

    // A question the knowledge base answers, then a request for a human.
    let mut frames = vec![];
    for (cmid, text, until) in
        [("q1", "When will my new card arrive?", "BotAnswered"), ("q2", "I want to talk to a human", "HandoffRequested")]
    {
        let (s, body) = app.post(&path("/messages"), Some(&visitor), json!({"client_message_id": cmid, "text": text})).await;
        assert_eq!(s, 201, "{body}");
        loop {
            let f = frame_where(&mut customer, |f| is_event(f, &id)).await;
            let done = f["event"]["type"] == until;
            frames.push(f);
            if done {
                break;
            }
        }
    }
    // Staff take it over too: a handoff by an agent says no why (it was no bot decision).
    let (visitor2, _) = app.visitor().await;
    let other = app.start_conversation(&visitor2).await;
    let (s, body) = app.post(&format!("/api/v1/conversations/{other}/handoff"), Some(&admin), json!({})).await;
    assert_eq!(s, 200, "{body}");

    // The agent's detail: every bot decision says why, consistently with its scores.
    let (s, staff) = app.get(&path(""), Some(&admin)).await;
    assert_eq!(s, 200, "{staff}");
    let events: Vec<&Value> = staff["events"].as_array().expect("events").iter().map(|f| &f["event"]).collect();
    let answer = events.iter().find(|e| e["type"] == "BotAnswered").expect("the bot answered");
    let why = &answer["why"];
    let scores = &why["scores"];
    match why["basis"].as_str() {
        Some("retrieval") => assert!(
            scores["passage_score"].as_f64() >= scores["passage_minimum"].as_f64() && scores["passage_minimum"].is_number(),
            "{why}"
        ),
        Some("intent_head") => {
            assert!(scores["confidence"].as_f64() >= scores["threshold"].as_f64() && scores["threshold"].is_number(), "{why}")
        }
        _ => panic!("the knowledge-base answer is put down to retrieval or the intent head: {answer}"),
    }
    let handoff = events.iter().find(|e| e["type"] == "HandoffRequested").expect("the bot handed off");
    assert_eq!(handoff["reason"], "customer_asked", "{handoff}");
    assert_eq!(handoff["why"]["basis"], "customer_asked", "{handoff}");
    let (_, other_detail) = app.get(&format!("/api/v1/conversations/{other}"), Some(&admin)).await;
    let taken =
        other_detail["events"].as_array().into_iter().flatten().find(|f| f["event"]["type"] == "HandoffRequested").expect("taken over");
    assert!(taken["event"].get("why").is_none(), "an agent's handoff has no why: {taken}");

    // The customer: neither the socket frames nor the REST detail carry it.
    let (s, detail) = app.get(&path(""), Some(&visitor)).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(detail["events"], json!(frames), "REST and the socket show a customer the same");
    for f in &frames {
        assert_customer_frame(f, &[]);
    }
    for text in [json!(frames).to_string(), detail.to_string()] {
        for word in ["\"why\"", "basis", "\"scores\"", "passage_score", "threshold", "confidence"] {
            assert!(!text.contains(word), "{word} reached the customer: {text}");
        }
    }
}
