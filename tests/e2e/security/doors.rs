//! Every door at once: each operation of the OpenAPI document that takes a
//! bearer token is called with no token, with an expired token, with the
//! token of an erased account, and (staff doors) with a visitor's free
//! token. A new operation is swept too, the day it is documented: it must
//! refuse the first three with `401`, and a visitor with `403` unless it is
//! listed below as a door customers use.

use crate::app::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// The operations a customer (a visitor's token) may call: their own
/// conversations, messages, files, feedback, handoff, resolving and
/// reopening, their own details and identity, their own session, the
/// tenant's public face (`getTenant`: id, name, pre-chat mode) and the seed
/// API's chat. Every other bearer operation is staff-only.
const CUSTOMER_DOORS: &[&str] = &[
    "identify",
    "getTenant",
    "resolveConversation",
    "reopenConversation",
    "seedChat",
    "me",
    "logout",
    "logoutAll",
    "socketTicket",
    "giveDetails",
    "startConversation",
    "listConversations",
    "getConversation",
    "postMessage",
    "uploadAttachment",
    "downloadAttachment",
    "giveFeedback",
    "handoffConversation",
];

struct Door {
    method: reqwest::Method,
    path: String,
    operation: String,
    /// The token is optional (`security: [{}, {bearer: []}]`).
    optional: bool,
    /// It takes a JSON body, which may be read (and refused, `400`) before
    /// the caller's role is checked: refused either way.
    body: bool,
}

/// The documented operations that take a bearer token.
async fn doors(app: &App) -> Vec<Door> {
    let (s, doc) = app.get("/openapi.json", None).await;
    assert_eq!(s, 200);
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let Some(security) = op["security"].as_array() else { continue };
            if !security.iter().any(|s| s.get("bearer").is_some()) {
                continue;
            }
            out.push(Door {
                method: method.to_uppercase().parse().expect("an HTTP method"),
                path: path.clone(),
                operation: op["operationId"].as_str().expect("every operation has an id").into(),
                optional: security.iter().any(|s| s.as_object().is_some_and(|o| o.is_empty())),
                body: op.get("requestBody").is_some(),
            });
        }
    }
    out
}

/// Calls `door` with `token` (path parameters filled from `ids`, an empty
/// JSON object as the body): the status.
async fn knock(app: &App, door: &Door, token: Option<&str>, ids: &[(&str, &str)]) -> u16 {
    let mut path = door.path.clone();
    for (name, value) in ids {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(!path.contains('{'), "{}: a path parameter this test does not fill: {path}", door.operation);
    let mut req = app.http.request(door.method.clone(), app.url(&path));
    if door.method != reqwest::Method::GET {
        req = req.json(&json!({}));
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn every_bearer_door_refuses_no_token_an_expired_one_an_erased_account_and_visitors_at_staff_doors() {
    const TTL: u64 = 20;
    let ttl = TTL.to_string();
    let app = spawn_app_with(&[("JAMUNA_ACCESS_TOKEN_TTL_SECS", &ttl)]).await;
    let expiring = app.login_admin().await;
    let issued = Instant::now();
    let admin = app.login_admin().await;
    let doors = doors(&app).await;
    assert!(doors.len() >= 40, "the document lists {} bearer operations", doors.len());

    // Real ids, so that a door which looked its item up before checking the
    // caller would show as a 200 or a 404 instead of a 403.
    let (visitor, customer) = app.visitor().await;
    let conversation = app.start_conversation(&visitor).await;
    let (s, agent) = app
        .post("/api/v1/users", Some(&admin), json!({"email": "doors@demo.example", "password": "a strong password", "role": "agent"}))
        .await;
    assert_eq!(s, 201, "{agent}");
    let agent = agent["id"].as_str().expect("an id").to_owned();
    let (s, team) = app.post("/api/v1/teams", Some(&admin), json!({"name": "Doors"})).await;
    assert_eq!(s, 201, "{team}");
    let team = team["id"].as_str().expect("an id").to_owned();
    let (s, canned) = app.post("/api/v1/canned-replies", Some(&admin), json!({"shortcut": "doors", "text": "Hello"})).await;
    assert_eq!(s, 201, "{canned}");
    let canned = canned["id"].as_str().expect("an id").to_owned();
    let ids_for = |door: &Door| -> Vec<(&str, String)> {
        let id = if door.path.starts_with("/api/v1/conversations/") {
            conversation.clone()
        } else if door.path.starts_with("/api/v1/teams/") {
            team.clone()
        } else if door.path.starts_with("/api/v1/canned-replies/") {
            canned.clone()
        } else if door.path.starts_with("/api/v1/users/") {
            agent.clone()
        } else if door.path.starts_with("/api/v1/customers/") {
            customer.clone()
        } else {
            "wh_doors".into()
        };
        vec![("id", id), ("user_id", agent.clone()), ("attachment_id", "att_doors".into())]
    };
    let knock_as = async |door: &Door, token: Option<&str>| {
        let ids = ids_for(door);
        let ids = ids.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>();
        knock(&app, door, token, &ids).await
    };

    // A visitor at every staff door.
    let mut wrong = Vec::new();
    for door in doors.iter().filter(|d| !CUSTOMER_DOORS.contains(&d.operation.as_str())) {
        let s = knock_as(door, Some(&visitor)).await;
        if s != 403 && !(door.body && s == 400) {
            wrong.push(format!("visitor: {} {} ({}) → {s}", door.method, door.path, door.operation));
        }
    }
    // The tenant's face a customer sees: no widget key, no settings.
    let (s, tenant) = app.get("/api/v1/tenant", Some(&visitor)).await;
    assert_eq!(s, 200);
    let mut keys = tenant.as_object().expect("an object").keys().cloned().collect::<Vec<_>>();
    keys.sort();
    assert_eq!(keys, ["id", "name", "prechat"], "{tenant}");
    // No token at all.
    for door in doors.iter().filter(|d| !d.optional) {
        let s = knock_as(door, None).await;
        if s != 401 {
            wrong.push(format!("no token: {} {} ({}) → {s}", door.method, door.path, door.operation));
        }
    }
    // An account erased while its token is still unexpired.
    let (s, _) = app
        .post("/api/v1/users", Some(&admin), json!({"email": "gone@demo.example", "password": "a strong password", "role": "admin"}))
        .await;
    assert_eq!(s, 201);
    let (s, gone) = app
        .post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "gone@demo.example", "password": "a strong password"}))
        .await;
    assert_eq!(s, 200, "{gone}");
    let (gone_id, gone) = (gone["user_id"].as_str().expect("an id").to_owned(), gone["access_token"].as_str().expect("a token").to_owned());
    let s = app.http.delete(app.url(&format!("/api/v1/users/{gone_id}"))).bearer_auth(&admin).send().await.expect("request").status();
    assert_eq!(s.as_u16(), 204);
    for door in doors.iter().filter(|d| !d.optional) {
        let s = knock_as(door, Some(&gone)).await;
        if s != 401 {
            wrong.push(format!("erased admin: {} {} ({}) → {s}", door.method, door.path, door.operation));
        }
    }
    // An admin's token past its expiry (and the verifier's 5 s of leeway).
    let left = Duration::from_secs(TTL + 6).saturating_sub(issued.elapsed());
    tokio::time::sleep(left).await;
    poll("the expired token refused", async || (app.get("/api/v1/users/me", Some(&expiring)).await.0 == 401).then_some(())).await;
    for door in doors.iter().filter(|d| !d.optional) {
        let s = knock_as(door, Some(&expiring)).await;
        if s != 401 {
            wrong.push(format!("expired admin: {} {} ({}) → {s}", door.method, door.path, door.operation));
        }
    }
    assert!(wrong.is_empty(), "doors that let the caller further than they should:\n{}", wrong.join("\n"));

    // The one door whose token is optional (a signed identity may come before
    // any visitor token: tests/e2e/identity.rs); a new one needs a test of its own.
    let optional = doors.iter().filter(|d| d.optional).map(|d| d.operation.as_str()).collect::<Vec<_>>();
    assert_eq!(optional, ["identify"]);
}
