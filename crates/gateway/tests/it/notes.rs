//! Private notes and mentions (issue 19, item 1): staff write notes naming
//! colleagues; a customer never gets a note (or a tag change) over the
//! socket, the REST detail or a resume, while staff get them; who may write
//! one; the mentioned agent's list.

use crate::app::*;
use jamuna_domain::user::Role;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn note_path(id: &str) -> String {
    format!("/api/v1/conversations/{id}/notes")
}

fn versions(frames: &[Value], id: &str) -> Vec<u64> {
    frames.iter().filter(|f| is_event(f, id)).filter_map(|f| f["version"].as_u64()).collect()
}

/// The event frames of conversation `id` up to the one at `version` (and, to
/// be sure nothing else was on its way, those before the next pong).
async fn until_version(ws: &mut Ws, id: &str, version: u64) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let f = frame_where(ws, |f| is_event(f, id)).await;
        let done = f["version"].as_u64() == Some(version);
        out.push(f);
        if done {
            out.extend(frames_until_pong(ws).await);
            return out;
        }
    }
}

const SECRET: &str = "Refund approved, customer is a VIP";

#[tokio::test]
async fn a_note_and_a_tag_reach_staff_only_over_the_socket_rest_and_resume() {
    let app = spawn_app().await;
    let ana = app.staff(Role::Agent, "Ana").await;
    let bo = app.staff(Role::Agent, "Bo").await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;
    let (s, body) = app.post_message(&customer.token, &id, "c1", "My card is late").await;
    assert_eq!(s, 201, "{body}");
    let mut mine = app.socket(&customer).await;
    send(&mut mine, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    let mut staff = app.socket(&bo).await;
    send(&mut staff, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    assert_eq!(versions(&until_version(&mut mine, &id, 2).await, &id), [1, 2]);
    assert_eq!(versions(&until_version(&mut staff, &id, 2).await, &id), [1, 2]);

    // A note naming Bo (twice), a tag, then a reply the customer does see.
    let (s, noted) = app.post(&note_path(&id), &ana.token, json!({"text": SECRET, "mentions": [bo.id, bo.id]})).await;
    assert_eq!(s, 201, "{noted}");
    assert_eq!((noted["version"].as_u64(), noted["mentions"].clone()), (Some(3), json!([bo.id])));
    let (s, body) = app.tags(&ana.token, &id, &["vip"], &[]).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = app.post_message(&ana.token, &id, "a1", "Your card is on its way.").await;
    assert_eq!(s, 201, "{body}");

    // Staff: the note and the tag, pushed and in the detail.
    let pushed = until_version(&mut staff, &id, 5).await;
    assert_eq!(versions(&pushed, &id), [3, 4, 5]);
    let note = pushed.iter().find(|f| event_type(f) == "NoteAdded").expect("the note is pushed to staff");
    assert_eq!(note["event"], json!({"type": "NoteAdded", "author": ana.id, "text": SECRET, "mentions": [bo.id]}));
    let (s, detail) = app.conversation(&bo.token, &id).await;
    assert_eq!(s, 200, "{detail}");
    let types: Vec<&str> = detail["events"].as_array().expect("events").iter().map(event_type).collect();
    assert_eq!(types, ["ConversationStarted", "MessagePosted", "NoteAdded", "TagsChanged", "MessagePosted"]);
    assert_eq!(detail["events"][2]["event"]["text"], SECRET);
    assert_eq!(detail["status"], "open");

    // The customer: neither over the socket, nor in the detail, nor on resume.
    let got = until_version(&mut mine, &id, 5).await;
    assert_eq!(versions(&got, &id), [5], "the note's and the tag's versions are skipped");
    let (s, detail) = app.conversation(&customer.token, &id).await;
    assert_eq!(s, 200, "{detail}");
    let seen: Vec<u64> = detail["events"].as_array().expect("events").iter().filter_map(|f| f["version"].as_u64()).collect();
    assert_eq!(seen, [1, 2, 5]);
    let (_, list) = app.list_conversations(&customer.token, "").await;
    let mut resumed = app.socket(&customer).await;
    send(&mut resumed, json!({"type": "subscribe", "conversation_id": id, "after_version": 2})).await;
    let after_gap = until_version(&mut resumed, &id, 5).await;
    assert_eq!(versions(&after_gap, &id), [5], "resume across the gap: exactly what follows");
    for text in [json!(got).to_string(), detail.to_string(), list.to_string(), json!(after_gap).to_string()] {
        for word in ["NoteAdded", "Refund approved", "TagsChanged", "vip", "mentions", &bo.id, &ana.id] {
            assert!(!text.contains(word), "{word} reached the customer: {text}");
        }
    }

    // Bo's mentions name the note; Ana (the author) has none.
    app.settle().await;
    let (s, page) = app.get("/api/v1/mentions", &bo.token).await;
    assert_eq!(s, 200, "{page}");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!((items[0]["conversation_id"].as_str(), items[0]["version"].as_u64()), (Some(id.as_str()), Some(3)));
    assert_eq!(items[0]["author"], json!(ana.id));
    assert!(!page.to_string().contains("Refund"), "a mention is a reference, not the note: {page}");
    let (_, page) = app.get("/api/v1/mentions", &ana.token).await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn only_staff_of_the_tenant_write_notes_naming_staff() {
    let app = spawn_app().await;
    let ana = app.staff(Role::Agent, "Ana").await;
    let customer = app.visitor().await;
    let stranger = app.visitor().await;
    let id = app.new_conversation(&customer).await;
    let note = |text: &str, mentions: Value| json!({"text": text, "mentions": mentions});

    let (s, body) = app.post(&note_path(&id), &customer.token, note("let me in", json!([]))).await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "the conversation's own customer: {body}");
    let (s, body) = app.post(&note_path(&id), &stranger.token, note("me too", json!([]))).await;
    assert_eq!(s, 403, "a visitor: {body}");
    let intruder = app.other_tenant_admin("globex").await;
    let (s, body) = app.post(&note_path(&id), &intruder.token, note("hello", json!([]))).await;
    assert_eq!((s, code(&body)), (404, "not_found"), "another tenant's conversation: {body}");
    let (s, body) = app.post(&note_path(&id), &ana.token, note("see this", json!([intruder.id]))).await;
    assert_eq!(s, 400, "another tenant's admin is no colleague: {body}");
    let (s, body) = app.post(&note_path(&id), &ana.token, note("see this", json!([customer.id]))).await;
    assert_eq!((s, code(&body)), (409, "not_an_agent"), "a customer is mentioned: {body}");
    let (s, body) = app.post(&note_path(&id), &ana.token, note("see this", json!(["nobody"]))).await;
    assert_eq!(s, 400, "{body}");
    let many: Vec<String> = (0..21).map(|i| format!("a{i}")).collect();
    let (s, body) = app.post(&note_path(&id), &ana.token, note("all of you", json!(many))).await;
    assert_eq!(s, 400, "more than 20 mentions: {body}");
    let (s, body) = app.post(&note_path(&id), &ana.token, note("   ", json!([]))).await;
    assert_eq!(s, 400, "a blank note: {body}");
    let (s, body) = app.post(&note_path(&id), &ana.token, json!({"text": "x", "secret": true})).await;
    assert_eq!(s, 400, "unknown fields: {body}");
    let (s, body) = app.post(&note_path("no-such-conversation"), &ana.token, note("x", json!([]))).await;
    assert_eq!(s, 404, "{body}");
    let (_, detail) = app.conversation(&ana.token, &id).await;
    assert_eq!(detail["version"], 1, "nothing was stored: {detail}");

    // A resolved conversation takes notes and stays resolved; the bot's rules are untouched.
    app.resolve(&ana.token, &id).await;
    let (s, body) = app.post(&note_path(&id), &ana.token, note("closed: refund sent", json!([ana.id]))).await;
    assert_eq!(s, 201, "{body}");
    let (_, detail) = app.conversation(&ana.token, &id).await;
    assert_eq!((detail["status"].as_str(), detail["human_involved"].as_bool()), (Some("resolved"), Some(false)), "{detail}");

    // Mentions: staff only, bounded, paged newest first.
    let (s, body) = app.get("/api/v1/mentions", &customer.token).await;
    assert_eq!(s, 403, "{body}");
    for bad in ["limit=0", "limit=101", "limit=x", "before=-1", "other=1"] {
        let (s, body) = app.get(&format!("/api/v1/mentions?{bad}"), &ana.token).await;
        assert_eq!(s, 400, "{bad}: {body}");
    }
    for n in 0..2 {
        let (s, body) = app.post(&note_path(&id), &ana.token, note(&format!("note {n}"), json!([ana.id]))).await;
        assert_eq!(s, 201, "{body}");
    }
    app.settle().await;
    let (s, first) = app.get("/api/v1/mentions?limit=2", &ana.token).await;
    assert_eq!(s, 200, "{first}");
    let page_versions = |p: &Value| p["items"].as_array().expect("items").iter().filter_map(|m| m["version"].as_u64()).collect::<Vec<_>>();
    assert_eq!(page_versions(&first), [5, 4], "newest first");
    let before = first["next_before"].as_u64().expect("a next page");
    let (_, rest) = app.get(&format!("/api/v1/mentions?limit=2&before={before}"), &ana.token).await;
    assert_eq!(page_versions(&rest), [3]);
    assert!(rest["next_before"].is_null(), "{rest}");
}

#[tokio::test]
async fn staff_list_their_colleagues_without_addresses_and_customers_do_not() {
    let app = spawn_app().await;
    let ana = app.staff(Role::Agent, "Ana").await;
    let admin = app.staff(Role::Admin, "Ada").await;
    let customer = app.visitor().await;
    let other = app.other_tenant_admin("globex").await;
    let (s, body) = app.get("/api/v1/colleagues", &ana.token).await;
    assert_eq!(s, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    let ids: Vec<&str> = items.iter().filter_map(|u| u["id"].as_str()).collect();
    assert!(ids.contains(&ana.id.as_str()) && ids.contains(&admin.id.as_str()), "{body}");
    assert!(!ids.contains(&customer.id.as_str()) && !ids.contains(&other.id.as_str()), "staff of this tenant only: {body}");
    assert!(items.iter().any(|u| u["name"] == "Ana" && u["role"] == "agent"), "{body}");
    assert!(!body.to_string().contains('@'), "no e-mail addresses: {body}");
    let (s, body) = app.get("/api/v1/colleagues", &customer.token).await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
}
