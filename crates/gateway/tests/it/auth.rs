//! Signing in: a password login gives tokens the rest of the API takes, and
//! bad credentials or widget keys are refused. (The only test that pays for
//! argon2id.)

use crate::app::*;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_login_gives_tokens_the_api_takes_and_bad_credentials_are_refused() {
    let app = spawn_app().await;
    let (s, created) = app.create_user(&app.admin.token, "agent", "Ana", "ana@acme.example", "a strong password").await;
    assert_eq!(s, 201, "{created}");

    let (s, tokens) = app.login(TENANT, "Ana@acme.example", "a strong password").await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!((tokens["user_id"].as_str(), tokens["tenant"].as_str()), (created["id"].as_str(), Some(TENANT)));
    assert_eq!((tokens["role"].as_str(), tokens["token_type"].as_str()), (Some("agent"), Some("bearer")));
    assert!(tokens["refresh_token"].as_str().is_some_and(|t| !t.is_empty()), "{tokens}");
    let token = tokens["access_token"].as_str().expect("a token");
    let (s, me) = app.me(token).await;
    assert_eq!((s, me["role"].as_str(), me["name"].as_str(), me["visitor"].as_bool()), (200, Some("agent"), Some("Ana"), Some(false)));
    // The token works on the conversations: this agent may take one.
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;
    let (s, r) = app.assign(token, &id, None).await;
    assert_eq!((s, r["changed"].as_bool()), (200, Some(true)), "{r}");

    // (Every password checked costs an argon2id verification: two refusals are enough.)
    for (tenant, email, password) in
        [(TENANT, "ana@acme.example", "the wrong password"), ("not a tenant", "ana@acme.example", "a strong password")]
    {
        let (s, body) = app.login(tenant, email, password).await;
        assert_eq!((s, code(&body)), (401, "unauthorized"), "{tenant} {email}: {body}");
    }
    let (s, body) = app.call(reqwest::Method::POST, "/api/v1/auth/visitor", None, Some(json!({"widget_key": "wk_unknown"}))).await;
    assert_eq!((s, code(&body)), (401, "unauthorized"), "{body}");
}
