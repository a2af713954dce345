//! What admins do: the knowledge base, users, analytics.

use crate::app::*;
use serde_json::json;

#[tokio::test]
async fn admins_manage_the_knowledge_base_and_imports_are_all_or_nothing() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (_, before) = app.get("/api/v1/kb/articles", Some(&admin)).await;
    let n = before["items"].as_array().unwrap().len();

    let csv = "question,answer\nCan I get a metal card?,Yes: order it in the app under Cards > Upgrade.\nDo you charge for ATM withdrawals?,Up to 200 EUR a month is free.\n";
    let r =
        app.http.post(app.url("/api/v1/kb/import")).bearer_auth(&admin).header("content-type", "text/csv").body(csv).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["added"], 2, "{body}");
    // Importing again changes nothing.
    let r =
        app.http.post(app.url("/api/v1/kb/import")).bearer_auth(&admin).header("content-type", "text/csv").body(csv).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!((body["added"].as_u64(), body["unchanged"].as_u64()), (Some(0), Some(2)), "{body}");
    // A broken file names its line and imports nothing.
    let bad = "question,answer\nA fine question?,A fine answer.\nA question with no answer,\n";
    let r =
        app.http.post(app.url("/api/v1/kb/import")).bearer_auth(&admin).header("content-type", "text/csv").body(bad).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("line 3"), "{body}");
    let (_, after) = app.get("/api/v1/kb/articles", Some(&admin)).await;
    assert_eq!(after["items"].as_array().unwrap().len(), n + 2);

    let (s, created) = app
        .post("/api/v1/kb/articles", Some(&admin), json!({"title": "Opening hours", "body": "Our chat is open around the clock."}))
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let r = app
        .http
        .put(app.url(&format!("/api/v1/kb/articles/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"title": "Opening hours", "body": "Always open."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = app.http.delete(app.url(&format!("/api/v1/kb/articles/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = app.http.delete(app.url(&format!("/api/v1/kb/articles/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409, "removing twice is refused");

    // Customers may not touch it.
    let (visitor, _) = app.visitor().await;
    let (s, _) = app.get("/api/v1/kb/articles", Some(&visitor)).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn admins_create_agents_who_log_in_and_erased_users_are_gone() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (s, agent) = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "ana@demo.example", "password": "a strong password", "name": "Ana", "role": "agent"}),
        )
        .await;
    assert_eq!(s, 201, "{agent}");
    let (s, login) =
        app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "ana@demo.example", "password": "a strong password"})).await;
    assert_eq!(s, 200, "{login}");
    assert_eq!(login["role"], "agent");
    let (s, _) = app
        .post("/api/v1/users", Some(&admin), json!({"email": "ana@demo.example", "password": "a strong password", "role": "agent"}))
        .await;
    assert_eq!(s, 409, "one account per address");
    let (_, users) = app.get("/api/v1/users", Some(&admin)).await;
    assert!(users["items"].as_array().unwrap().iter().any(|u| u["email"] == "ana@demo.example"), "{users}");

    // Refresh rotates; logout revokes.
    let refresh = login["refresh_token"].as_str().unwrap();
    let (s, again) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(s, 200, "{again}");
    let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(s, 401, "a used refresh token is gone");
    // (That replay revoked the whole chain, `again`'s token too: sign in afresh
    // so the erase below is what revokes the next token.)
    let (s, fresh) =
        app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "ana@demo.example", "password": "a strong password"})).await;
    assert_eq!(s, 200, "{fresh}");
    let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": again["refresh_token"]})).await;
    assert_eq!(s, 401, "the replay revoked the chain");

    let id = agent["id"].as_str().unwrap();
    let r = app.http.delete(app.url(&format!("/api/v1/users/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": fresh["refresh_token"]})).await;
    assert_eq!(s, 401, "an erased user's tokens are revoked");
    let (s, _) =
        app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "ana@demo.example", "password": "a strong password"})).await;
    assert_eq!(s, 401, "an erased user cannot log in");
    let (_, users) = app.get("/api/v1/users", Some(&admin)).await;
    assert!(!users["items"].as_array().unwrap().iter().any(|u| u["email"] == "ana@demo.example"), "the address is gone: {users}");
}

#[tokio::test]
async fn analytics_count_a_new_conversation() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (visitor, _) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;
    app.post(&format!("/api/v1/conversations/{id}/messages"), Some(&visitor), json!({"client_message_id": "a1", "text": "hello"})).await;
    let mut started = 0;
    for _ in 0..50 {
        let (s, body) = app.get("/api/v1/analytics", Some(&admin)).await;
        assert_eq!(s, 200, "{body}");
        started = body["total"]["conversations_started"].as_u64().unwrap_or(0);
        if started >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(started, 1);
    let (s, _) = app.get("/api/v1/analytics?from=2026-02-01&to=2025-01-01", Some(&admin)).await;
    assert_eq!(s, 400);
    let (s, _) = app.get("/api/v1/analytics", Some(&visitor)).await;
    assert_eq!(s, 403);
}
