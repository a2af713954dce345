//! Attacks on identity (issue 16, findings 4 and 8): an erased address must
//! lead to nothing (its old id is not derived from it, and it registers again
//! as someone new), and `register` must not tell whether an address or a
//! tenant exists.

use crate::app::{ADMIN_EMAIL, App, spawn_app};
use jamuna_domain::TenantId;
use jamuna_domain::user::Email;
use serde_json::{Value, json};
use std::path::Path;

async fn register(app: &App, tenant: &str, email: &str, password: &str) -> (u16, Value) {
    app.post("/api/v1/auth/register", None, json!({"tenant": tenant, "email": email, "password": password, "name": "Someone"})).await
}

async fn login(app: &App, email: &str, password: &str) -> (u16, Value) {
    app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": email, "password": password})).await
}

async fn erase(app: &App, admin: &str, id: &str) -> u16 {
    let r = app.http.delete(app.url(&format!("/api/v1/users/{id}"))).bearer_auth(admin).send().await.expect("request");
    r.status().as_u16()
}

/// The id an address had before: a hash of tenant and address, which anyone
/// holding the address can compute.
fn derived_id(email: &str) -> String {
    let tenant = TenantId::parse("demo").expect("a tenant id");
    jamuna_gateway::identity::legacy_user_id(&tenant, &Email::parse(email).expect("an address")).to_string()
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

/// Finding 4: the user id was a hash of tenant and address, so whoever held an
/// erased address found its old stream in the log, and registering it again
/// answered `409 erased`. Now the id is random, the log names nothing an
/// address leads to, and the erased address registers as a new, unrelated user.
#[tokio::test]
async fn an_erased_address_leads_to_nothing_and_registers_again_as_someone_new() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let email = "erin.unlinkable@demo.example";

    let (s, body) = register(&app, "demo", email, "erin's first password").await;
    assert_eq!(s, 202, "{body}");
    let (s, first) = login(&app, email, "erin's first password").await;
    assert_eq!(s, 200, "{first}");
    let old = first["user_id"].as_str().expect("an id").to_owned();
    assert_ne!(old, derived_id(email), "the id follows from the address");

    assert_eq!(erase(&app, &admin, &old).await, 204);
    assert!(!anywhere(app.data.path(), &derived_id(email)), "the data directory names the id the address hashes to");

    let (s, body) = register(&app, "demo", email, "erin's second password").await;
    assert_eq!(s, 202, "the erased address registers again: {body}");
    let (s, second) = login(&app, email, "erin's second password").await;
    assert_eq!(s, 200, "{second}");
    let new = second["user_id"].as_str().expect("an id");
    assert_ne!(new, old, "a new user, with a new id");
    assert_ne!(new, derived_id(email));
    let (s, me) = app.get("/api/v1/users/me", second["access_token"].as_str()).await;
    assert_eq!((s, me["email"].as_str()), (200, Some(email)), "{me}");

    // A repeated erase of the old user still answers 204, and frees nothing of the new one's.
    assert_eq!(erase(&app, &admin, &old).await, 204);
    let (s, body) = register(&app, "demo", email, "someone else's password").await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(login(&app, email, "someone else's password").await.0, 401, "the address is still the new user's");
    assert_eq!(login(&app, email, "erin's second password").await.0, 200);
}

/// Finding 8: `register` answered `409 already_registered` for a taken
/// address and `201` with tokens for a new one. Now both get the same answer
/// and no tokens; only the owner's password signs in.
#[tokio::test]
async fn register_answers_a_taken_address_as_it_answers_a_new_one() {
    let app = spawn_app().await;
    let new = register(&app, "demo", "fresh.face@demo.example", "a fresh password").await;
    assert_eq!(new.0, 202, "{}", new.1);
    assert!(new.1.get("access_token").is_none(), "no tokens: {}", new.1);
    let taken = register(&app, "demo", "fresh.face@demo.example", "an attacker's password").await;
    assert_eq!(taken, new, "a taken address answers like a new one");
    let admin = register(&app, "demo", ADMIN_EMAIL, "an attacker's password").await;
    assert_eq!(admin, new, "the admin's address answers like a new one");

    assert_eq!(login(&app, "fresh.face@demo.example", "an attacker's password").await.0, 401);
    assert_eq!(login(&app, "fresh.face@demo.example", "a fresh password").await.0, 200);
    app.login_admin().await;
}

/// Finding 8: `register` answered `404` for a tenant that does not exist and
/// `403` for one without self-service registration. Now both get the same `403`.
#[tokio::test]
async fn register_answers_a_missing_tenant_as_it_answers_one_without_signup() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let r = app
        .http
        .put(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&admin)
        .json(&json!({"allowed_origins": [], "self_signup": false}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);

    let closed = register(&app, "demo", "closed.door@demo.example", "a fine password").await;
    let missing = register(&app, "no-such-tenant", "closed.door@demo.example", "a fine password").await;
    assert_eq!(closed.0, 403, "{}", closed.1);
    assert_eq!(missing, closed, "a missing tenant answers like one without self-service registration");
}
