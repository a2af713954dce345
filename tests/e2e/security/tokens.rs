//! Attacks on tokens (issue 16, the refresh part of finding 8, the form part
//! of finding 9, and idle visitor identities from finding 5).

use crate::app::{ADMIN_EMAIL, ADMIN_PASSWORD, App, spawn_app};
use serde_json::{Value, json};

async fn refresh(app: &App, token: &str) -> (u16, Value) {
    app.post("/api/v1/auth/refresh", None, json!({"refresh_token": token})).await
}

fn refresh_token(body: &Value) -> String {
    body["refresh_token"].as_str().expect("a refresh token").to_string()
}

/// Finding 8: replaying a used refresh token left the newer token of the same
/// chain valid, so a stolen token raced its owner unnoticed. Now a replay
/// revokes the whole family: the thief and the owner both sign in again.
#[tokio::test]
async fn a_replayed_refresh_token_revokes_its_family() {
    let app = spawn_app().await;
    let (s, body) = app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 200, "{body}");
    let first = refresh_token(&body);
    let (s, body) = refresh(&app, &first).await;
    assert_eq!(s, 200, "the first redemption rotates: {body}");
    let second = refresh_token(&body);

    let (s, body) = refresh(&app, &first).await;
    assert_eq!(s, 401, "a replayed token is refused: {body}");
    let (s, body) = refresh(&app, &second).await;
    assert_eq!(s, 401, "and the chain's newer token stops working too: {body}");

    // Another sign-in is another family, untouched by the replay.
    let (s, body) = app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = refresh(&app, &refresh_token(&body)).await;
    assert_eq!(s, 200, "a new sign-in starts a new family: {body}");
}

/// Finding 9: `POST /auth/token?username=…&password=…` signed in, and the
/// password ended up in every proxy's access log. Now credentials in the
/// query string answer 422 saying why, even when the form has them too.
#[tokio::test]
async fn seed_token_refuses_credentials_in_the_query_string() {
    let app = spawn_app().await;
    let creds = [("username", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)];
    let r = app.http.post(app.url("/auth/token")).query(&creds).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.expect("JSON");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("query") && d.contains("log")), "{body}");

    let r = app.http.post(app.url("/auth/token")).query(&[("password", ADMIN_PASSWORD)]).form(&creds).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 422, "the query is refused even when the form has the credentials");

    let r = app.http.post(app.url("/auth/token")).form(&creds).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 200, "the form alone signs in");
}
