//! Private notes with @mentions (issue 19, item 1) against the real binary,
//! with the bot running: a note reaches staff only (socket, REST, resume),
//! the bot goes on answering after one, the mentioned agent finds it under
//! their mentions, and erasing the customer leaves the note's words nowhere
//! on disk.

use crate::app::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Words no one else writes.
const NOTE: &str = "Vorpalquince grumbleton: refund approved";

fn is_event(f: &Value, conversation: &str) -> bool {
    f["type"] == "event" && f["conversation_id"] == conversation
}

/// The event frames of `id` up to the first one whose event is `until`.
async fn events_until(ws: &mut Ws, id: &str, until: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let f = frame_where(ws, |f| is_event(f, id)).await;
        let done = f["event"]["type"] == until;
        out.push(f);
        if done {
            return out;
        }
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the data dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

/// The files under `dir` holding one of the note's words (as written or in lower case).
fn leaks(dir: &Path) -> Vec<(PathBuf, String)> {
    let words: Vec<String> = ["Vorpalquince", "grumbleton"].iter().flat_map(|w| [w.to_string(), w.to_lowercase()]).collect();
    let mut all = Vec::new();
    files(dir, &mut all);
    let mut found = Vec::new();
    for path in all {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        for w in &words {
            if bytes.windows(w.len()).any(|b| b == w.as_bytes()) {
                found.push((path.clone(), w.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_note_is_for_staff_the_bot_goes_on_and_erasing_the_customer_shreds_it() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (s, bo) = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "bo@demo.example", "password": "a strong password", "name": "Bo", "role": "agent"}),
        )
        .await;
    assert_eq!(s, 201, "{bo}");
    let bo_id = bo["id"].as_str().expect("Bo's id").to_owned();
    let (s, login) =
        app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "bo@demo.example", "password": "a strong password"})).await;
    assert_eq!(s, 200, "{login}");
    let bo = login["access_token"].as_str().expect("a token").to_owned();

    let (visitor, visitor_id) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;
    let path = |p: &str| format!("/api/v1/conversations/{id}{p}");
    let mut customer = app.socket(&visitor).await;
    send(&mut customer, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    let mut staff = app.socket(&bo).await;
    send(&mut staff, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    let (s, b) = app.post(&path("/messages"), Some(&visitor), json!({"client_message_id": "q1", "text": "Hello"})).await;
    assert_eq!(s, 201, "{b}");
    let mut frames = events_until(&mut customer, &id, "BotAnswered").await;

    // The admin writes a note naming Bo; Bo's socket gets it.
    let (s, noted) = app.post(&path("/notes"), Some(&admin), json!({"text": NOTE, "mentions": [bo_id]})).await;
    assert_eq!(s, 201, "{noted}");
    let note_version = noted["version"].as_u64().expect("the note's version");
    let pushed = frame_where(&mut staff, |f| is_event(f, &id) && f["event"]["type"] == "NoteAdded").await;
    assert_eq!((pushed["version"].as_u64(), pushed["event"]["text"].as_str()), (Some(note_version), Some(NOTE)));

    // The bot is not silenced by a note: the next question is answered.
    let (s, b) =
        app.post(&path("/messages"), Some(&visitor), json!({"client_message_id": "q2", "text": "When will my new card arrive?"})).await;
    assert_eq!(s, 201, "{b}");
    let after = events_until(&mut customer, &id, "BotAnswered").await;
    assert!(after.iter().all(|f| f["version"].as_u64() > Some(note_version)), "{after:?}");
    frames.extend(after);
    let versions: Vec<u64> = frames.iter().filter_map(|f| f["version"].as_u64()).collect();
    assert!(!versions.contains(&note_version), "the note's version reached the customer: {versions:?}");
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    let (s, detail) = app.get(&path(""), Some(&visitor)).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(detail["events"], json!(frames), "REST and the socket show the customer the same");
    for text in [json!(frames).to_string(), detail.to_string()] {
        for word in ["NoteAdded", "Vorpalquince", "mentions", bo_id.as_str()] {
            assert!(!text.contains(word), "{word} reached the customer: {text}");
        }
    }
    // Resume over the gap: after the version before the note, the one after it.
    let mut again = app.socket(&visitor).await;
    send(&mut again, json!({"type": "subscribe", "conversation_id": id, "after_version": note_version - 1})).await;
    let next = frame_where(&mut again, |f| is_event(f, &id)).await;
    assert_eq!(next["version"].as_u64(), Some(note_version + 1), "{next}");

    // Bo finds it under his mentions; the admin (the author) has none.
    let mention = poll("Bo's mention", async || {
        let (_, page) = app.get("/api/v1/mentions", Some(&bo)).await;
        page["items"].as_array().and_then(|i| i.first().cloned())
    })
    .await;
    assert_eq!((mention["conversation_id"].as_str(), mention["version"].as_u64()), (Some(id.as_str()), Some(note_version)));
    let (s, mine) = app.get("/api/v1/mentions", Some(&admin)).await;
    assert_eq!((s, mine["items"].clone()), (200, json!([])), "{mine}");
    let (s, refused) = app.get("/api/v1/mentions", Some(&visitor)).await;
    assert_eq!(s, 403, "{refused}");

    // Erasing the customer shreds the note (sealed with their key): gone from
    // the detail and from every file, while the mention (a reference) stays.
    let r = app.http.delete(app.url(&format!("/api/v1/users/{visitor_id}"))).bearer_auth(&admin).send().await.expect("request");
    assert!(r.status().is_success(), "{}", r.status());
    poll("the note erased in the detail", async || {
        let (_, d) = app.get(&path(""), Some(&admin)).await;
        let note = d["events"].as_array()?.iter().find(|f| f["event"]["type"] == "NoteAdded")?.clone();
        (!note.to_string().contains("Vorpalquince")).then_some(())
    })
    .await;
    poll("every projection at the head", async || {
        let (_, s) = app.get("/status/projections", None).await;
        s["projections"].as_array()?.iter().all(|p| p["lag"] == 0).then_some(())
    })
    .await;
    assert_eq!(leaks(app.data.path()), vec![], "the note's words are on disk after the erasure");
    let (_, page) = app.get("/api/v1/mentions", Some(&bo)).await;
    assert_eq!(page["items"][0]["version"].as_u64(), Some(note_version), "{page}");
}
