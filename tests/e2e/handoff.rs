//! How readily the bot hands off: the tenant's `handoff_retention` sets the
//! threshold the live bot applies to its intent model. The demo tenant's model
//! is trained with `jamuna kb import` and `jamuna kb train` (as an admin would)
//! before the server starts. (That the setting moves the threshold the worker
//! applies is tested in the ai-worker's `answer` tests: the held-out questions of
//! the fixture all scored above the thresholds of both 80% and 99.5% here, so no
//! decision flipped end to end.)

use crate::app::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/ai-worker/tests/fixtures").join(name)
}

/// Each intent's answer names it, so a reply shows which intent answered.
fn answer_of(intent: &str) -> String {
    format!("[{intent}] Here is what to do about it.")
}

fn jamuna(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_jamuna"))
        .args(args)
        .env("JAMUNA_DATA_DIR", data)
        .env("JAMUNA_LOG", "warn")
        .output()
        .expect("run jamuna");
    assert!(out.status.success(), "jamuna {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (text, intent) of a labelled CSV, without its out-of-scope rows.
fn rows(path: &Path) -> Vec<(String, String)> {
    let examples = jamuna_ai_worker::eval::read_examples(path).expect("a fixture");
    examples.into_iter().filter(|e| e.intent != "oos").map(|e| (e.text, e.intent)).collect()
}

/// The text of the bot's reply to `text` in a new conversation of `visitor`, or
/// `None` when it handed the conversation off.
async fn reply(app: &App, visitor: &str, text: &str) -> Option<String> {
    let id = app.start_conversation(visitor).await;
    let mut ws = app.socket(visitor).await;
    send(&mut ws, json!({"type": "subscribe", "conversation_id": id, "after_version": 1})).await;
    send(&mut ws, json!({"type": "send", "conversation_id": id, "client_message_id": "q-1", "text": text})).await;
    let is_reply =
        |f: &Value| f["type"] == "event" && ["BotAnswered", "HandoffRequested"].contains(&f["event"]["type"].as_str().unwrap_or(""));
    let f = frame_where(&mut ws, is_reply).await;
    (f["event"]["type"] == "BotAnswered").then(|| f["event"]["text"].as_str().unwrap_or_default().to_owned())
}

async fn set_retention(app: &App, admin: &str, retention: f64) -> (u16, Value) {
    let (s, tenant) = app.get("/api/v1/tenant", Some(admin)).await;
    assert_eq!(s, 200, "{tenant}");
    let mut settings = tenant["settings"].clone();
    settings["handoff_retention"] = json!(retention);
    let r = app.http.put(app.url("/api/v1/tenant/settings")).bearer_auth(admin).json(&settings).send().await.expect("put");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_handoff_retention_is_a_tenant_setting_beside_a_model_trained_with_kb_train() {
    let data = tempfile::tempdir().expect("a data dir");
    let train = fixture("intents_train.csv");
    let intents: std::collections::BTreeSet<String> = rows(&train).into_iter().map(|r| r.1).collect();
    let answers = data.path().join("answers.csv");
    let lines: String = intents.iter().map(|i| format!("{i},{}\n", answer_of(i))).collect();
    std::fs::write(&answers, format!("category,answer\n{lines}")).expect("the answers file");
    jamuna(
        data.path(),
        &["kb", "import", train.to_str().expect("a path"), "--tenant", "demo", "--answers", answers.to_str().expect("a path")],
    );
    let trained = jamuna(data.path(), &["kb", "train", "--tenant", "demo"]);
    let summary: Value = serde_json::from_str(trained.lines().last().expect("a JSON line")).expect("JSON");
    assert!(summary["retention"].as_f64().is_some_and(|r| (r - 0.95).abs() < 1e-6), "{trained}");
    assert!(trained.contains("default threshold"), "{trained}");

    let (child, base, widget_key) = start(data.path());
    let app = App { child, base, data, http: reqwest::Client::new(), widget_key };
    let admin = app.login_admin().await;
    let (visitor, _) = app.visitor().await;
    // The worker loads the model `kb train` cached: a training example is answered by its intent.
    let start = Instant::now();
    while reply(&app, &visitor, "My new card hasn't arrived yet").await.as_deref() != Some(answer_of("card_arrival").as_str()) {
        assert!(start.elapsed() < Duration::from_secs(120), "the bot never answered with the trained model");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (s, tenant) = app.get("/api/v1/tenant", Some(&admin)).await;
    assert_eq!((s, &tenant["settings"]["handoff_retention"]), (200, &json!(0.95)), "{tenant}");
    let (s, body) = set_retention(&app, &admin, 0.5).await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("invalid_handoff_retention")), "{body}");

    let (s, body) = set_retention(&app, &admin, 0.995).await;
    assert_eq!((s, &body["settings"]["handoff_retention"]), (200, &json!(0.995)), "{body}");
    let (s, _) = set_retention(&app, &admin, 0.80).await;
    assert_eq!(s, 200);
    let (_, tenant) = app.get("/api/v1/tenant", Some(&admin)).await;
    assert_eq!(tenant["settings"]["handoff_retention"], json!(0.8));
    // The worker folds the change in and keeps answering with the model (a training
    // example is far above any threshold).
    assert_eq!(reply(&app, &visitor, "My new card hasn't arrived yet").await, Some(answer_of("card_arrival")));
}
