//! Who the customer is (issue 19, item 6): the host page identifies a
//! signed-in customer with an HMAC of their id under the tenant's identity
//! secret; staff see the identity and past conversations in the contact
//! panel; the pre-chat form; erasure.

use crate::app::{App, poll, spawn_app};
use jamuna_gateway::contact::sign;
use serde_json::{Value, json};
use std::path::Path;

/// A new identity secret for demo (admin): the secret.
async fn new_secret(app: &App, admin: &str, grace_secs: u64) -> String {
    let (s, body) = app.post("/api/v1/tenant/identity-secret", Some(admin), json!({"grace_secs": grace_secs})).await;
    assert_eq!(s, 200, "{body}");
    body["secret"].as_str().expect("a secret").to_owned()
}

async fn identify(app: &App, visitor: Option<&str>, body: Value) -> (u16, Value) {
    let mut body = body;
    body["widget_key"] = json!(app.widget_key);
    app.post("/api/v1/auth/identify", visitor, body).await
}

fn signed(secret: &str, id: &str) -> Value {
    json!({"id": id, "signature": sign(secret, id)})
}

async fn panel(app: &App, token: &str, customer: &str) -> (u16, Value) {
    app.get(&format!("/api/v1/customers/{customer}"), Some(token)).await
}

/// The panel once it lists `n` conversations (the read model follows the log).
async fn panel_with(app: &App, admin: &str, customer: &str, n: usize) -> Value {
    poll("the contact panel", async || {
        let (s, p) = panel(app, admin, customer).await;
        (s == 200 && p["conversations"].as_array().map(Vec::len) == Some(n)).then_some(p)
    })
    .await
}

#[tokio::test]
async fn a_signed_customer_is_identified_and_visible_to_staff_only() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let secret = new_secret(&app, &admin, 0).await;
    let (visitor, visitor_id) = app.visitor().await;
    let mut body = signed(&secret, "shop-1001");
    body["name"] = json!("Grace Hopper");
    body["email"] = json!("Grace@Shop.example");
    body["attributes"] = json!({"plan": "pro", "seats": "12"});
    let (s, tokens) = identify(&app, Some(&visitor), body).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(tokens["user_id"], visitor_id.as_str(), "the visitor became the customer: its conversations stay its own");
    let customer = tokens["access_token"].as_str().expect("a token").to_owned();
    let conversation = app.start_conversation(&customer).await;

    let p = panel_with(&app, &admin, &visitor_id, 1).await;
    assert_eq!(
        (p["name"].as_str(), p["email"].as_str(), p["external_id"].as_str()),
        (Some("Grace Hopper"), Some("grace@shop.example"), Some("shop-1001"))
    );
    assert_eq!((p["verified"].as_bool(), p["identified"].as_bool()), (Some(true), Some(true)));
    assert_eq!(p["attributes"], json!({"plan": "pro", "seats": "12"}));
    assert_eq!(p["conversations"][0]["id"], conversation.as_str());

    // Customers see no one's panel, not even their own; another visitor neither.
    assert_eq!(panel(&app, &customer, &visitor_id).await.0, 403);
    let (other, _) = app.visitor().await;
    assert_eq!(panel(&app, &other, &visitor_id).await.0, 403);
    // Staff asking for a user who is not a customer, or no one: 404.
    let (_, me) = app.get("/api/v1/users/me", Some(&admin)).await;
    assert_eq!(panel(&app, &admin, me["id"].as_str().expect("an id")).await.0, 404);
    assert_eq!(panel(&app, &admin, "nobody").await.0, 404);
}

#[tokio::test]
async fn forged_unsigned_and_other_tenants_signatures_are_refused_within_bounded_attempts() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    // No secret yet: nothing verifies.
    let (s, body) = identify(&app, None, signed("jis_guess", "shop-1")).await;
    assert_eq!((s, body["error"]["code"].as_str()), (401, Some("invalid_signature")), "{body}");
    let secret = new_secret(&app, &admin, 0).await;
    assert!(secret.starts_with("jis_") && secret.len() == 68, "{secret}");

    // A forged signature, one of another id, and one made with another tenant's secret.
    let other = spawn_app().await;
    let other_admin = other.login_admin().await;
    let other_secret = new_secret(&other, &other_admin, 0).await;
    assert_ne!(other_secret, secret);
    let forged = json!({"id": "shop-1", "signature": "ab".repeat(32)});
    let another_id = json!({"id": "shop-1", "signature": sign(&secret, "shop-2")});
    for (what, body) in [("forged", forged), ("another id's", another_id), ("another tenant's", signed(&other_secret, "shop-1"))] {
        let (s, answer) = identify(&app, None, body).await;
        assert_eq!((s, answer["error"]["code"].as_str()), (401, Some("invalid_signature")), "{what}: {answer}");
    }
    // A signature is required, and the body is checked.
    let (s, _) = identify(&app, None, json!({"id": "shop-1"})).await;
    assert_eq!(s, 400);
    let (s, answer) = app
        .post(
            "/api/v1/auth/identify",
            None,
            json!({"widget_key": "wk_unknown_0123456789abcdef", "id": "shop-1", "signature": sign(&secret, "shop-1")}),
        )
        .await;
    assert_eq!(s, 401, "{answer}");

    // Attempts are bounded: the fifth refusal in a minute, then 429 even for a right signature.
    let (s, _) = identify(&app, None, json!({"id": "shop-1", "signature": "00".repeat(32)})).await;
    assert_eq!(s, 401);
    let (s, answer) = identify(&app, None, signed(&secret, "shop-1")).await;
    assert_eq!((s, answer["error"]["code"].as_str()), (429, Some("rate_limited")), "{answer}");
    // The other server's own signature works there.
    let (s, _) = identify(&other, None, signed(&other_secret, "shop-1")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_rotated_secret_verifies_within_its_grace_and_never_after() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let first = new_secret(&app, &admin, 0).await;
    assert_eq!(identify(&app, None, signed(&first, "shop-7")).await.0, 200);
    // Rotated with an hour's grace: both verify.
    let second = new_secret(&app, &admin, 3600).await;
    assert_ne!(first, second);
    assert_eq!(identify(&app, None, signed(&first, "shop-7")).await.0, 200, "within the grace");
    assert_eq!(identify(&app, None, signed(&second, "shop-7")).await.0, 200);
    // Rotated with no grace: only the newest verifies.
    let third = new_secret(&app, &admin, 0).await;
    assert_eq!(identify(&app, None, signed(&second, "shop-7")).await.0, 401, "no grace: refused at once");
    assert_eq!(identify(&app, None, signed(&first, "shop-7")).await.0, 401, "older ones too");
    assert_eq!(identify(&app, None, signed(&third, "shop-7")).await.0, 200);
    // Admins only, and the grace is bounded.
    let (visitor, _) = app.visitor().await;
    assert_eq!(app.post("/api/v1/tenant/identity-secret", Some(&visitor), json!({})).await.0, 403);
    let (s, body) = app.post("/api/v1/tenant/identity-secret", Some(&admin), json!({"grace_secs": 604801})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("invalid_grace")), "{body}");
}

#[tokio::test]
async fn the_same_id_from_two_visitors_is_one_customer_with_both_conversations() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let secret = new_secret(&app, &admin, 0).await;
    let (laptop, laptop_id) = app.visitor().await;
    let (s, a) = identify(&app, Some(&laptop), signed(&secret, "shop-42")).await;
    assert_eq!(s, 200, "{a}");
    let first = app.start_conversation(a["access_token"].as_str().expect("token")).await;

    // Another browser: a new visitor, the same signed id.
    let (phone, phone_id) = app.visitor().await;
    assert_ne!(phone_id, laptop_id);
    let (s, b) = identify(&app, Some(&phone), signed(&secret, "shop-42")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user_id"], laptop_id.as_str(), "one customer");
    let on_phone = b["access_token"].as_str().expect("token").to_owned();
    let second = app.start_conversation(&on_phone).await;
    assert_eq!(app.get(&format!("/api/v1/conversations/{first}"), Some(&on_phone)).await.0, 200, "the past conversation follows");
    let p = panel_with(&app, &admin, &laptop_id, 2).await;
    let ids: Vec<&str> = p["conversations"].as_array().expect("a list").iter().filter_map(|c| c["id"].as_str()).collect();
    assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()), "{p}");

    // Someone else's signed id is someone else: they see neither.
    let (s, c) = identify(&app, None, signed(&secret, "shop-43")).await;
    assert_eq!(s, 200);
    assert_ne!(c["user_id"], laptop_id.as_str());
    let stranger = c["access_token"].as_str().expect("token");
    assert_eq!(app.get(&format!("/api/v1/conversations/{first}"), Some(stranger)).await.0, 404);
    let (_, list) = app.get("/api/v1/conversations", Some(stranger)).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    // An identified customer's bearer token does not move them to another id's user.
    let (s, d) = identify(&app, Some(&on_phone), signed(&secret, "shop-44")).await;
    assert_eq!(s, 200);
    assert_ne!(d["user_id"], laptop_id.as_str());
}

#[tokio::test]
async fn a_required_pre_chat_form_comes_before_the_first_message() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (_, tenant) = app.get("/api/v1/tenant", Some(&admin)).await;
    let mut settings = tenant["settings"].clone();
    settings["prechat"] = json!("required");
    let r = app.http.put(app.url("/api/v1/tenant/settings")).bearer_auth(&admin).json(&settings).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 200);

    let (visitor, visitor_id) = app.visitor().await;
    let (_, seen) = app.get("/api/v1/tenant", Some(&visitor)).await;
    assert_eq!(seen["prechat"], "required", "the widget learns it must show the form");
    let (s, body) = app.post("/api/v1/conversations", Some(&visitor), json!({"channel": "web"})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("prechat_required")), "{body}");
    let (s, _) = app.post("/api/v1/customers/me/details", Some(&visitor), json!({"name": "Ada", "email": "not an address"})).await;
    assert_eq!(s, 400);
    let (s, _) = app.post("/api/v1/customers/me/details", Some(&visitor), json!({"name": " ", "email": "ada@example.com"})).await;
    assert_eq!(s, 400);
    let (s, body) =
        app.post("/api/v1/customers/me/details", Some(&visitor), json!({"name": "Ada Byron", "email": "Ada@Example.com"})).await;
    assert_eq!(s, 204, "{body}");
    let conversation = app.start_conversation(&visitor).await;
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            Some(&visitor),
            json!({"client_message_id": "m1", "text": "hello"}),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {body}");
    let p = panel_with(&app, &admin, &visitor_id, 1).await;
    assert_eq!(
        (p["name"].as_str(), p["email"].as_str(), p["verified"].as_bool()),
        (Some("Ada Byron"), Some("ada@example.com"), Some(false))
    );
    // Staff give no pre-chat details.
    assert_eq!(app.post("/api/v1/customers/me/details", Some(&admin), json!({"name": "A", "email": "a@b.io"})).await.0, 403);

    // A customer the website identified skips the form.
    let secret = new_secret(&app, &admin, 0).await;
    let (s, t) = identify(&app, None, signed(&secret, "shop-9")).await;
    assert_eq!(s, 200, "{t}");
    app.start_conversation(t["access_token"].as_str().expect("token")).await;
}

/// Does any file under `dir` hold these bytes?
fn anywhere(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).expect("read the data dir").flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            anywhere(&path, needle)
        } else {
            std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        }
    })
}

#[tokio::test]
async fn erasing_an_identified_customer_leaves_no_plaintext_of_the_identity() {
    const NAME: &str = "Wilhelmina Quackenbush";
    const EMAIL: &str = "wquackenbush@zorbly.example";
    const EXTERNAL: &str = "zorbly-cust-8812736";
    const ATTRIBUTE: &str = "platinumfrobnicator";
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let secret = new_secret(&app, &admin, 0).await;
    let mut body = signed(&secret, EXTERNAL);
    body["name"] = json!(NAME);
    body["email"] = json!(EMAIL);
    body["attributes"] = json!({"tier": ATTRIBUTE});
    let (s, t) = identify(&app, None, body.clone()).await;
    assert_eq!(s, 200, "{t}");
    let id = t["user_id"].as_str().expect("an id").to_owned();
    app.start_conversation(t["access_token"].as_str().expect("token")).await;
    let p = panel_with(&app, &admin, &id, 1).await;
    assert_eq!(p["name"], NAME);
    let needles = [NAME, EMAIL, EXTERNAL, ATTRIBUTE];
    assert!(needles.iter().any(|n| anywhere(app.data.path(), n)), "the identity is on disk before the erase (else this proves nothing)");

    let r = app.http.delete(app.url(&format!("/api/v1/users/{id}"))).bearer_auth(&admin).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 204);
    let p = poll("the erase in the read model", async || {
        let (_, p) = panel(&app, &admin, &id).await;
        (p["erased"] == true).then_some(p)
    })
    .await;
    assert_eq!(
        (p["name"].clone(), p["email"].clone(), p["external_id"].clone(), p["identified"].clone()),
        (Value::Null, Value::Null, Value::Null, json!(false))
    );
    poll("every projection at the head", async || {
        let (_, s) = app.get("/status/projections", None).await;
        s["projections"].as_array()?.iter().all(|p| p["lag"] == 0).then_some(())
    })
    .await;
    for n in needles {
        assert!(!anywhere(app.data.path(), n), "{n:?} is still on disk after the erase");
    }
    // The external id is free again: identified anew, it is a new customer.
    let (s, again) = identify(&app, None, body).await;
    assert_eq!(s, 200, "{again}");
    assert_ne!(again["user_id"], id.as_str());
}
