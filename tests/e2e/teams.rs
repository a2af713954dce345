//! Teams and the router against the real binary: two agents of a team online
//! in their dashboards, three customers asking for a human — the router gives
//! the conversations out in turn within the agents' capacity (1 here), and
//! takes them from an agent who has been offline longer than the set time
//! (2 s here).

use crate::app::*;
use serde_json::{Value, json};

/// A new agent of the demo tenant, signed in: (token, user id).
async fn agent(app: &App, admin: &str, name: &str) -> (String, String) {
    let email = format!("{name}@demo.example");
    let body = json!({"email": email, "password": "agent-password-1", "name": name, "role": "agent"});
    let (s, created) = app.post("/api/v1/users", Some(admin), body).await;
    assert_eq!(s, 201, "{created}");
    let (s, login) = app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": email, "password": "agent-password-1"})).await;
    assert_eq!(s, 200, "{login}");
    (login["access_token"].as_str().expect("a token").into(), created["id"].as_str().expect("an id").into())
}

async fn assignee(app: &App, token: &str, id: &str) -> Value {
    let (s, d) = app.get(&format!("/api/v1/conversations/{id}"), Some(token)).await;
    assert_eq!(s, 200, "{d}");
    d["assignee"].clone()
}

/// Polls until conversation `id` is assigned to `who` (`null`: to nobody).
async fn assigned_to(app: &App, token: &str, id: &str, who: Value) {
    poll(&format!("{id} assigned to {who}"), async || (assignee(app, token, id).await == who).then_some(())).await;
}

#[tokio::test]
async fn the_router_gives_handoffs_to_online_team_members_in_turn_and_reassigns_the_absent() {
    let app = spawn_app_with(&[("JAMUNA_ROUTER_CAPACITY", "1"), ("JAMUNA_ROUTER_OFFLINE_AFTER_SECS", "2")]).await;
    let admin = app.login_admin().await;
    let (ann, ann_id) = agent(&app, &admin, "ann").await;
    let (bob, bob_id) = agent(&app, &admin, "bob").await;
    let (s, team) = app.post("/api/v1/teams", Some(&admin), json!({"name": "Cards"})).await;
    assert_eq!(s, 201, "{team}");
    let team = team["id"].as_str().expect("an id").to_owned();
    for id in [&ann_id, &bob_id] {
        let r = app.http.put(app.url(&format!("/api/v1/teams/{team}/members/{id}"))).bearer_auth(&admin).send().await.expect("put");
        assert_eq!(r.status().as_u16(), 200);
    }
    // An agent cannot manage teams.
    let (s, _) = app.post("/api/v1/teams", Some(&ann), json!({"name": "Ann's"})).await;
    assert_eq!(s, 403);
    // A team that is not the tenant's (as another tenant's would be) is not found.
    let (s, _) = app.get("/api/v1/teams/not-ours", Some(&ann)).await;
    assert_eq!(s, 404);

    // Both online: their dashboards' sockets.
    let ann_ws = app.socket(&ann).await;
    let _bob_ws = app.socket(&bob).await;

    // Three customers ask for a human; their conversations are the team's.
    let mut conversations = Vec::new();
    for _ in 0..3 {
        let (customer, _) = app.visitor().await;
        let id = app.start_conversation(&customer).await;
        let (s, r) = app.post(&format!("/api/v1/conversations/{id}/team"), Some(&admin), json!({"team_id": team})).await;
        assert_eq!(s, 200, "{r}");
        let (s, r) = app.post(&format!("/api/v1/conversations/{id}/handoff"), Some(&customer), json!({})).await;
        assert_eq!(s, 200, "{r}");
        conversations.push(id);
    }
    let (c1, c2, c3) = (&conversations[0], &conversations[1], &conversations[2]);
    // In turn (ids in order: ann, then bob), one each: the third waits.
    assigned_to(&app, &admin, c1, json!(ann_id)).await;
    assigned_to(&app, &admin, c2, json!(bob_id)).await;
    assert_eq!(assignee(&app, &admin, c3).await, Value::Null, "both agents are at their capacity");
    poll("the waiting count", async || {
        let (_, teams) = app.get("/api/v1/teams", Some(&ann)).await;
        (teams["teams"][0]["waiting"] == json!(1)).then_some(())
    })
    .await;
    let listed = poll("the team's inbox", async || {
        let (_, list) = app.get(&format!("/api/v1/conversations?team={team}"), Some(&ann)).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 3).then_some(items)
    })
    .await;
    assert!(listed.iter().all(|c| conversations.contains(&c["id"].as_str().unwrap_or_default().to_owned())));

    // Ann resolves hers: she has room, the third is hers.
    let (s, _) = app.post(&format!("/api/v1/conversations/{c1}/resolve"), Some(&ann), json!({})).await;
    assert_eq!(s, 200);
    assigned_to(&app, &admin, c3, json!(ann_id)).await;

    // Ann goes offline: after the set time her open conversation is taken from her; bob is full, so it waits.
    drop(ann_ws);
    assigned_to(&app, &admin, c3, Value::Null).await;
    let (_, d) = app.get(&format!("/api/v1/conversations/{c3}"), Some(&admin)).await;
    assert_eq!(d["status"], "pending", "{d}");
    let by = d["events"].as_array().and_then(|e| e.iter().rev().find(|f| f["event"]["type"] == "AgentUnassigned")).cloned();
    assert_eq!(by.map(|f| f["event"]["by"].clone()), Some(Value::Null), "the router unassigned it");
    // Bob resolves his: the third goes to him.
    let (s, _) = app.post(&format!("/api/v1/conversations/{c2}/resolve"), Some(&bob), json!({})).await;
    assert_eq!(s, 200);
    assigned_to(&app, &admin, c3, json!(bob_id)).await;

    // Unassign by hand: it waits for a human again, and the router gives it back to the one online agent with room.
    let (s, r) = app.post(&format!("/api/v1/conversations/{c3}/unassign"), Some(&bob), json!({})).await;
    assert_eq!((s, &r["changed"]), (200, &json!(true)), "{r}");
    assigned_to(&app, &admin, c3, json!(bob_id)).await;
    let (_, d) = app.get(&format!("/api/v1/conversations/{c3}"), Some(&admin)).await;
    let kinds: Vec<&str> = d["events"].as_array().expect("events").iter().filter_map(|f| f["event"]["type"].as_str()).collect();
    assert!(!kinds.contains(&"BotAnswered"), "the bot never comes back: {kinds:?}");
}
