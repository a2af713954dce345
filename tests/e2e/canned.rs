//! Canned replies against the real binary: admins manage them, staff list
//! them, everyone else is refused; the domain's rules answer 422, 409 and 404.

use crate::app::*;
use serde_json::{Value, json};

const REPLIES: &str = "/api/v1/canned-replies";

impl App {
    async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self.http.put(self.url(path)).bearer_auth(token).json(&body).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.http.delete(self.url(path)).bearer_auth(token).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A new agent of the demo tenant, signed in: their access token.
    async fn agent(&self, admin: &str) -> String {
        let (s, body) = self
            .post(
                "/api/v1/users",
                Some(admin),
                json!({"email": "ana@demo.example", "password": "a strong password", "name": "Ana", "role": "agent"}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        let (s, login) = self
            .post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "ana@demo.example", "password": "a strong password"}))
            .await;
        assert_eq!(s, 200, "{login}");
        login["access_token"].as_str().expect("a token").into()
    }
}

fn shortcuts(list: &Value) -> Vec<&str> {
    list["items"].as_array().expect("items").iter().map(|r| r["shortcut"].as_str().expect("a shortcut")).collect()
}

#[tokio::test]
async fn admins_add_change_and_remove_canned_replies_that_staff_list() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let agent = app.agent(&admin).await;

    let (s, empty) = app.get(REPLIES, Some(&agent)).await;
    assert_eq!((s, empty), (200, json!({"items": []})));
    let (s, refund) = app
        .post(
            REPLIES,
            Some(&admin),
            json!({"shortcut": "refund", "text": " Hi {{customer.name}}, your refund is on its way. {{agent.name}} "}),
        )
        .await;
    assert_eq!(s, 201, "{refund}");
    assert_eq!(refund["text"], "Hi {{customer.name}}, your refund is on its way. {{agent.name}}", "the text is trimmed");
    let (s, hello) =
        app.post(REPLIES, Some(&admin), json!({"shortcut": "hello", "text": "Hello! Conversation {{ conversation.id }}."})).await;
    assert_eq!(s, 201, "{hello}");
    let (s, list) = app.get(REPLIES, Some(&agent)).await;
    assert_eq!(s, 200);
    assert_eq!(shortcuts(&list), vec!["hello", "refund"], "listed by shortcut: {list}");
    assert_eq!(list["items"][1], refund);

    let id = refund["id"].as_str().expect("an id");
    let (s, changed) =
        app.put(&format!("{REPLIES}/{id}"), &admin, json!({"shortcut": "refund-sent", "text": "Your refund was sent."})).await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed, json!({"id": id, "shortcut": "refund-sent", "text": "Your refund was sent."}));
    let (_, list) = app.get(REPLIES, Some(&admin)).await;
    assert_eq!(shortcuts(&list), vec!["hello", "refund-sent"]);

    let (s, _) = app.delete(&format!("{REPLIES}/{id}"), &admin).await;
    assert_eq!(s, 204);
    let (_, list) = app.get(REPLIES, Some(&agent)).await;
    assert_eq!(shortcuts(&list), vec!["hello"]);
    // Gone: changing or removing it again names nothing.
    let (s, body) = app.delete(&format!("{REPLIES}/{id}"), &admin).await;
    assert_eq!((s, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (s, body) = app.put(&format!("{REPLIES}/{id}"), &admin, json!({"shortcut": "x", "text": "y"})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (s, _) = app.delete(&format!("{REPLIES}/not.an.id"), &admin).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn agents_and_customers_cannot_change_canned_replies_and_customers_cannot_read_them() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let agent = app.agent(&admin).await;
    let (visitor, _) = app.visitor().await;
    let (_, reply) = app.post(REPLIES, Some(&admin), json!({"shortcut": "hello", "text": "Hello!"})).await;
    let path = format!("{REPLIES}/{}", reply["id"].as_str().expect("an id"));

    for token in [&agent, &visitor] {
        let (s, body) = app.post(REPLIES, Some(token), json!({"shortcut": "mine", "text": "Mine"})).await;
        assert_eq!((s, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
        let (s, _) = app.put(&path, token, json!({"shortcut": "hello", "text": "Changed"})).await;
        assert_eq!(s, 403);
        let (s, _) = app.delete(&path, token).await;
        assert_eq!(s, 403);
    }
    let (s, body) = app.get(REPLIES, Some(&visitor)).await;
    assert_eq!((s, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (s, _) = app.get(REPLIES, None).await;
    assert_eq!(s, 401);
    let (_, list) = app.get(REPLIES, Some(&admin)).await;
    assert_eq!(list["items"], json!([reply]), "nothing changed");
}

#[tokio::test]
async fn a_taken_shortcut_is_409_and_an_invalid_reply_422_naming_the_rule() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (_, first) = app.post(REPLIES, Some(&admin), json!({"shortcut": "refund", "text": "First"})).await;
    let (_, second) = app.post(REPLIES, Some(&admin), json!({"shortcut": "hello", "text": "Second"})).await;

    let (s, body) = app.post(REPLIES, Some(&admin), json!({"shortcut": "refund", "text": "Again"})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("shortcut_taken")), "{body}");
    let (s, body) = app
        .put(&format!("{REPLIES}/{}", second["id"].as_str().expect("an id")), &admin, json!({"shortcut": "refund", "text": "Second"}))
        .await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("shortcut_taken")), "{body}");

    let (s, body) = app.post(REPLIES, Some(&admin), json!({"shortcut": "typo", "text": "Hi {{customer.nmae}}!"})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (422, Some("unknown_placeholder")), "{body}");
    assert!(body["error"]["message"].as_str().expect("a message").contains("{{customer.nmae}}"), "the message names it: {body}");
    for (shortcut, text, code) in [
        ("Refund", "Hi", "invalid_shortcut"),
        ("with space", "Hi", "invalid_shortcut"),
        (&"x".repeat(33) as &str, "Hi", "invalid_shortcut"),
        ("blank", "   ", "invalid_text"),
        ("long", &"x".repeat(4_001) as &str, "invalid_text"),
    ] {
        let (s, body) = app.post(REPLIES, Some(&admin), json!({"shortcut": shortcut, "text": text})).await;
        assert_eq!((s, body["error"]["code"].as_str()), (422, Some(code)), "{shortcut:?}: {body}");
    }
    let (s, _) = app.post(REPLIES, Some(&admin), json!({"shortcut": "x", "text": "y", "extra": 1})).await;
    assert_eq!(s, 400, "unknown fields are refused");
    let (_, list) = app.get(REPLIES, Some(&admin)).await;
    assert_eq!(list["items"], json!([second, first]), "nothing refused was stored");
}

#[tokio::test]
async fn a_tenant_keeps_at_most_500_canned_replies() {
    let app = spawn_app_with(&[("JAMUNA_RATE_LIMIT_PER_MINUTE", "5000")]).await;
    let admin = app.login_admin().await;
    let mut last = Value::Null;
    for n in 0..500 {
        let (s, body) = app.post(REPLIES, Some(&admin), json!({"shortcut": format!("r{n}"), "text": format!("Reply {n}")})).await;
        assert_eq!(s, 201, "reply {n}: {body}");
        last = body;
    }
    let (s, body) = app.post(REPLIES, Some(&admin), json!({"shortcut": "one-more", "text": "Too many"})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("too_many_canned_replies")), "{body}");
    let (_, list) = app.get(REPLIES, Some(&admin)).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(500));
    // Removing one makes room for one.
    let (s, _) = app.delete(&format!("{REPLIES}/{}", last["id"].as_str().expect("an id")), &admin).await;
    assert_eq!(s, 204);
    let (s, body) = app.post(REPLIES, Some(&admin), json!({"shortcut": "one-more", "text": "Fits"})).await;
    assert_eq!(s, 201, "{body}");
}

#[tokio::test]
async fn the_openapi_document_declares_the_constraints() {
    let app = spawn_app().await;
    let (s, doc) = app.get("/openapi.json", None).await;
    assert_eq!(s, 200);
    let body = &doc["components"]["schemas"]["CannedReplyBody"]["properties"];
    assert_eq!(body["shortcut"]["pattern"], "^[a-z0-9_-]{1,32}$", "{body}");
    // The text is a message's text: the `MessageText` schema (lengths and the pattern the handler enforces).
    assert_eq!(body["text"]["$ref"], "#/components/schemas/MessageText", "{body}");
    let text = &doc["components"]["schemas"]["MessageText"];
    assert_eq!((body["shortcut"]["maxLength"].as_u64(), text["maxLength"].as_u64()), (Some(32), Some(4000)), "{text}");
    assert!(text["pattern"].is_string(), "{text}");
    let post = &doc["paths"][REPLIES]["post"]["responses"];
    for status in ["201", "403", "409", "422"] {
        assert!(post.get(status).is_some(), "POST documents {status}: {post}");
    }
    let delete = &doc["paths"][format!("{REPLIES}/{{id}}")]["delete"]["responses"];
    assert!(delete.get("404").is_some(), "{delete}");
}
