//! Notification e-mails (issue 19, item 5) through a real SMTP server:
//! mailpit, started by `scripts/with-services.sh` (`JAMUNA_TEST_SMTP_URL`,
//! what arrived at `JAMUNA_TEST_MAILPIT_URL/api/v1/messages`). Without it
//! these tests pass vacuously, except under JAMUNA_REQUIRE_SERVICES=1,
//! where they fail.
//!
//! Mailpit is shared by the tests running at once: each test's recipients
//! have addresses of their own, and a test counts only mail to them. To show
//! that a mail did *not* go, a test makes the notifier send a later one and
//! waits for that: the notifier acts in the log's order, so by then it has
//! decided about everything before.

use crate::app::{App, frame_where, next_frame, poll, send, spawn_app_with, start_with};
use serde_json::{Value, json};

/// mailpit's SMTP URL and API, or `None` (and the test passes) without it.
fn mailpit(test: &str) -> Option<(String, String)> {
    match (std::env::var("JAMUNA_TEST_SMTP_URL"), std::env::var("JAMUNA_TEST_MAILPIT_URL")) {
        (Ok(smtp), Ok(api)) => Some((smtp, api)),
        _ => {
            let required = std::env::var("JAMUNA_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(!required, "{test}: JAMUNA_TEST_SMTP_URL and JAMUNA_TEST_MAILPIT_URL are not set, but JAMUNA_REQUIRE_SERVICES=1");
            eprintln!("{test}: skipped (no SMTP server; run under scripts/with-services.sh)");
            None
        }
    }
}

/// The mails that arrived for `to`, each with its full text (lines end in
/// `\n`): (subject, text, Message-ID).
async fn mails_to(api: &str, to: &str) -> Vec<(String, String, String)> {
    let http = reqwest::Client::new();
    let list: Value =
        http.get(format!("{api}/api/v1/messages?limit=1000")).send().await.expect("mailpit").json().await.expect("mailpit JSON");
    let mut out = Vec::new();
    for m in list["messages"].as_array().cloned().unwrap_or_default() {
        if !m["To"].as_array().is_some_and(|a| a.iter().any(|r| r["Address"] == to)) {
            continue;
        }
        let id = m["ID"].as_str().expect("an id");
        let full: Value = http.get(format!("{api}/api/v1/message/{id}")).send().await.expect("mailpit").json().await.expect("JSON");
        out.push((
            full["Subject"].as_str().unwrap_or_default().to_owned(),
            full["Text"].as_str().unwrap_or_default().replace("\r\n", "\n"),
            full["MessageID"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    out
}

/// Waits until `n` mails arrived for `to`.
async fn wait_for_mails(api: &str, to: &str, n: usize) -> Vec<(String, String, String)> {
    poll(&format!("{n} mail(s) to {to}"), async || {
        let got = mails_to(api, to).await;
        (got.len() >= n).then_some(got)
    })
    .await
}

fn unique(name: &str) -> String {
    format!("{name}-{}@demo.example", uuid::Uuid::now_v7().simple())
}

/// A new agent with an address of its own: (token, address).
async fn agent(app: &App, admin: &str) -> (String, String) {
    let email = unique("agent");
    let (s, body) = app
        .post("/api/v1/users", Some(admin), json!({"email": email, "password": "a strong password", "name": "Ann", "role": "agent"}))
        .await;
    assert_eq!(s, 201, "{body}");
    (login(app, &email).await, email)
}

async fn login(app: &App, email: &str) -> String {
    let (s, body) = app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": email, "password": "a strong password"})).await;
    assert_eq!(s, 200, "{body}");
    body["access_token"].as_str().expect("a token").to_owned()
}

/// A customer's message in a new conversation, assigned to the agent: the conversation id.
async fn waiting_conversation(app: &App, agent: &str, text: &str) -> String {
    let (visitor, _) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;
    let (s, body) =
        app.post(&format!("/api/v1/conversations/{id}/messages"), Some(&visitor), json!({"client_message_id": "q1", "text": text})).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = app.post(&format!("/api/v1/conversations/{id}/assign"), Some(agent), json!({})).await;
    assert_eq!(s, 200, "{body}");
    id
}

#[tokio::test]
async fn an_unanswered_assigned_conversation_emails_the_agent_once_even_after_kill_9() {
    let Some((smtp, api)) = mailpit("unanswered") else { return };
    let env = [("JAMUNA_SMTP_URL", smtp.as_str()), ("JAMUNA_NOTIFY_UNANSWERED_AFTER_SECS", "2")];
    let mut app = spawn_app_with(&env).await;
    let admin = app.login_admin().await;
    let (ann, address) = agent(&app, &admin).await;
    let first = waiting_conversation(&app, &ann, "Where is my parcel? It has been a week.").await;

    let mails = wait_for_mails(&api, &address, 1).await;
    let (subject, text, message_id) = &mails[0];
    assert_eq!(subject, "A customer is waiting for your answer");
    assert!(text.contains("> Where is my parcel? It has been a week."), "{text}");
    assert!(text.contains(&format!("/admin/#/inbox/mine/{first}")), "a link to the conversation: {text}");
    assert!(message_id.ends_with("@notify.jamuna"), "{message_id}");

    // Recorded in the log, for staff only, without the address.
    let (_, staff) = app.get(&format!("/api/v1/conversations/{first}"), Some(&admin)).await;
    let recorded: Vec<&Value> =
        staff["events"].as_array().expect("events").iter().filter(|e| e["event"]["type"] == "NotificationSent").collect();
    assert_eq!(recorded.len(), 1, "{staff}");
    assert_eq!(recorded[0]["event"]["kind"], "unanswered");
    assert!(!recorded[0].to_string().contains(&address), "no address in the event: {}", recorded[0]);

    // kill -9 and start again on the same data directory.
    app.child.kill().expect("kill -9");
    app.child.wait().expect("reap");
    let (child, base, _) = start_with(app.data.path(), &env);
    app.child = child;
    app.base = base;
    // A second waiting conversation: once its mail is out, the restarted
    // notifier has decided about the first one again.
    let ann = login(&app, &address).await;
    let second = waiting_conversation(&app, &ann, "And my refund?").await;
    let mails = wait_for_mails(&api, &address, 2).await;
    assert_eq!(mails.len(), 2, "one mail per conversation, none twice: {mails:?}");
    assert_eq!(mails.iter().filter(|m| m.1.contains(&first)).count(), 1, "{mails:?}");
    assert_eq!(mails.iter().filter(|m| m.1.contains(&second)).count(), 1, "{mails:?}");
}

#[tokio::test]
async fn an_agent_reply_is_emailed_to_a_customer_who_left_and_not_to_one_still_there() {
    let Some((smtp, api)) = mailpit("reply") else { return };
    let app = spawn_app_with(&[("JAMUNA_SMTP_URL", smtp.as_str())]).await;
    let admin = app.login_admin().await;
    let email = unique("customer");
    let (s, body) =
        app.post("/api/v1/auth/register", None, json!({"tenant": "demo", "email": email, "password": "a strong password"})).await;
    assert_eq!(s, 202, "{body}");
    let customer = login(&app, &email).await;
    let here = app.start_conversation(&customer).await;
    let left = app.start_conversation(&customer).await;

    // The customer has both open, then closes one (unsubscribes; the pong
    // says the server has handled it). The other stays open to the end.
    let mut ws = app.socket(&customer).await;
    for id in [&here, &left] {
        send(&mut ws, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    }
    send(&mut ws, json!({"type": "unsubscribe", "conversation_id": left})).await;
    send(&mut ws, json!({"type": "ping"})).await;
    frame_where(&mut ws, |f| f["type"] == "pong").await;

    // A reply in each, the open one first.
    let reply = async |id: &str, text: &str| {
        let (s, body) =
            app.post(&format!("/api/v1/conversations/{id}/messages"), Some(&admin), json!({"client_message_id": "r1", "text": text})).await;
        assert_eq!(s, 201, "{body}");
    };
    reply(&here, "A reply while you are here.").await;
    reply(&left, "A reply while you are away:\nyour card ships today.").await;
    frame_where(&mut ws, |f| f["event"]["text"] == "A reply while you are here.").await;

    let mails = wait_for_mails(&api, &email, 1).await;
    assert_eq!(mails.len(), 1, "only the reply in the conversation they left: {mails:?}");
    let (subject, text, _) = &mails[0];
    assert_eq!(subject, "You have a reply from our support team");
    assert!(text.contains("> A reply while you are away:\n> your card ships today."), "{text}");
    assert!(!text.contains("while you are here"), "{text}");
    let id = &left;

    // The customer never sees the record of it: not on resume over the socket…
    send(&mut ws, json!({"type": "subscribe", "conversation_id": left, "after_version": 0})).await;
    send(&mut ws, json!({"type": "ping"})).await;
    let mut history = Vec::new();
    loop {
        let f = next_frame(&mut ws).await;
        if f["type"] == "pong" {
            break;
        }
        history.push(f);
    }
    assert!(history.iter().any(|f| f["event"]["text"] == "A reply while you are away:\nyour card ships today."), "{history:?}");
    assert!(history.iter().all(|f| f["event"]["type"] != "NotificationSent"), "{history:?}");
    // …nor over REST; staff do.
    let (_, mine) = app.get(&format!("/api/v1/conversations/{id}"), Some(&customer)).await;
    assert!(!mine.to_string().contains("NotificationSent"), "{mine}");
    let (_, staff) = app.get(&format!("/api/v1/conversations/{id}"), Some(&admin)).await;
    assert!(staff.to_string().contains("NotificationSent"), "{staff}");
}
