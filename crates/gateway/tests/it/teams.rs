//! `/api/v1/teams`, a conversation's team, unassign, the inbox filter by team
//! and the "waiting for a human" counts — and who may do what.

use crate::app::*;
use jamuna_domain::user::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn create_team(app: &TestApp, token: &str, name: &str) -> (u16, Value) {
    app.post("/api/v1/teams", token, json!({"name": name})).await
}

#[tokio::test]
async fn admins_manage_teams_and_staff_read_them() {
    let app = spawn_app().await;
    let agent = app.staff(Role::Agent, "Ana").await;
    let (s, created) = create_team(&app, &app.admin.token, " Billing ").await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().expect("an id").to_owned();
    let (s, r) = create_team(&app, &app.admin.token, "billing").await;
    assert_eq!((s, r["error"]["code"].as_str()), (409, Some("team_name_taken")));
    let (s, r) = create_team(&app, &app.admin.token, "   ").await;
    assert_eq!((s, r["error"]["code"].as_str()), (409, Some("invalid_team_name")));

    let member = |user: &str| format!("/api/v1/teams/{id}/members/{user}");
    let (s, r) = app.call(Method::PUT, &member(&agent.id), Some(&app.admin.token), None).await;
    assert_eq!((s, &r["changed"]), (200, &json!(true)), "{r}");
    let (s, r) = app.call(Method::PUT, &member(&agent.id), Some(&app.admin.token), None).await;
    assert_eq!((s, &r["changed"]), (200, &json!(false)), "a member once");
    let customer = app.visitor().await;
    let (s, r) = app.call(Method::PUT, &member(&customer.id), Some(&app.admin.token), None).await;
    assert_eq!((s, r["error"]["code"].as_str()), (409, Some("not_an_agent")));
    let (s, _) = app.call(Method::PUT, &member("nobody"), Some(&app.admin.token), None).await;
    assert_eq!(s, 404);
    let (s, r) = app.call(Method::PATCH, &format!("/api/v1/teams/{id}"), Some(&app.admin.token), Some(json!({"name": "Payments"}))).await;
    assert_eq!(s, 200, "{r}");

    // Agents read; they do not write.
    let (s, list) = app.get("/api/v1/teams", &agent.token).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["teams"], json!([{"id": id, "name": "Payments", "members": [agent.id], "waiting": 0}]));
    let (s, _) = create_team(&app, &agent.token, "Mine").await;
    assert_eq!(s, 403);
    let (s, _) = app.call(Method::PATCH, &format!("/api/v1/teams/{id}"), Some(&agent.token), Some(json!({"name": "X"}))).await;
    assert_eq!(s, 403);
    let (s, _) = app.call(Method::DELETE, &member(&agent.id), Some(&agent.token), None).await;
    assert_eq!(s, 403);
    // Customers do neither.
    let (s, _) = app.get("/api/v1/teams", &customer.token).await;
    assert_eq!(s, 403);

    let (s, _) = app.call(Method::DELETE, &member(&agent.id), Some(&app.admin.token), None).await;
    assert_eq!(s, 200);
    let (s, _) = app.call(Method::DELETE, &format!("/api/v1/teams/{id}"), Some(&app.admin.token), None).await;
    assert_eq!(s, 200);
    let (s, _) = app.get(&format!("/api/v1/teams/{id}"), &agent.token).await;
    assert_eq!(s, 404, "a removed team is gone");
}

#[tokio::test]
async fn another_tenants_team_is_not_found() {
    let app = spawn_app().await;
    let other = app.other_tenant_admin("globex").await;
    let (s, created) = create_team(&app, &other.token, "Globex support").await;
    assert_eq!(s, 201, "{created}");
    let theirs = created["id"].as_str().expect("an id");
    let (s, _) = app.get(&format!("/api/v1/teams/{theirs}"), &app.admin.token).await;
    assert_eq!(s, 404);
    let (s, _) = app.call(Method::PATCH, &format!("/api/v1/teams/{theirs}"), Some(&app.admin.token), Some(json!({"name": "Mine"}))).await;
    assert_eq!(s, 404);
    let (s, _) = app.call(Method::PUT, &format!("/api/v1/teams/{theirs}/members/{}", app.admin.id), Some(&app.admin.token), None).await;
    assert_eq!(s, 404);
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;
    let (s, _) = app.post(&format!("/api/v1/conversations/{id}/team"), &app.admin.token, json!({"team_id": theirs})).await;
    assert_eq!(s, 404, "a conversation is not given to another tenant's team");
    // And an admin of ours is not made a member of theirs.
    let (_, ours) = create_team(&app, &app.admin.token, "Ours").await;
    let ours = ours["id"].as_str().expect("an id");
    let (s, _) = app.call(Method::PUT, &format!("/api/v1/teams/{ours}/members/{}", other.id), Some(&app.admin.token), None).await;
    assert_eq!(s, 404, "their admin is not a user of ours");
    let (_, list) = app.get("/api/v1/teams", &other.token).await;
    assert_eq!(list["teams"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn a_conversation_is_given_to_a_team_filtered_counted_and_unassigned() {
    let app = spawn_app().await;
    let agent = app.staff(Role::Agent, "Ana").await;
    let (_, created) = create_team(&app, &app.admin.token, "Billing").await;
    let team = created["id"].as_str().expect("an id").to_owned();
    let customer = app.visitor().await;
    let in_team = app.new_conversation(&customer).await;
    let elsewhere = app.new_conversation(&customer).await;
    for id in [&in_team, &elsewhere] {
        let (s, r) = app.post(&format!("/api/v1/conversations/{id}/handoff"), &customer.token, json!({})).await;
        assert_eq!(s, 200, "{r}");
    }
    let (s, r) = app.post(&format!("/api/v1/conversations/{in_team}/team"), &agent.token, json!({"team_id": team})).await;
    assert_eq!((s, &r["changed"]), (200, &json!(true)), "{r}");
    let (s, _) = app.post(&format!("/api/v1/conversations/{in_team}/team"), &customer.token, json!({"team_id": team})).await;
    assert_eq!(s, 403, "customers do not choose a team");
    let (_, detail) = app.get(&format!("/api/v1/conversations/{in_team}"), &agent.token).await;
    assert_eq!(detail["team"], json!(team));
    let (_, seen) = app.get(&format!("/api/v1/conversations/{in_team}"), &customer.token).await;
    assert!(seen.get("team").is_none(), "the team is staff business: {seen}");
    assert!(seen["events"].as_array().expect("events").iter().all(|f| f["event"]["type"] != "TeamAssigned"), "{seen}");

    app.settle().await;
    assert_eq!(app.listed(&agent.token, &format!("team={team}")).await, std::slice::from_ref(&in_team));
    let (s, _) = app.list_conversations(&customer.token, &format!("team={team}")).await;
    assert_eq!(s, 403, "customers do not filter by team");
    let (_, list) = app.get("/api/v1/teams", &agent.token).await;
    assert_eq!((&list["teams"][0]["waiting"], &list["waiting_without_team"]), (&json!(1), &json!(1)), "{list}");

    // Assigned, it no longer waits; unassigned, it waits again (the bot does not come back).
    let (s, _) = app.assign(&agent.token, &in_team, None).await;
    assert_eq!(s, 200);
    let (s, _) = app.post(&format!("/api/v1/conversations/{in_team}/unassign"), &customer.token, json!({})).await;
    assert_eq!(s, 403, "customers do not unassign");
    let (s, r) = app.post(&format!("/api/v1/conversations/{in_team}/unassign"), &agent.token, json!({})).await;
    assert_eq!((s, &r["changed"]), (200, &json!(true)), "{r}");
    let (_, detail) = app.get(&format!("/api/v1/conversations/{in_team}"), &agent.token).await;
    assert_eq!((&detail["assignee"], &detail["status"], &detail["human_involved"]), (&Value::Null, &json!("pending"), &json!(true)));
    let (s, r) = app.post(&format!("/api/v1/conversations/{in_team}/unassign"), &agent.token, json!({})).await;
    assert_eq!((s, &r["changed"]), (200, &json!(false)), "nobody to unassign");
    let (_, seen) = app.get(&format!("/api/v1/conversations/{in_team}"), &customer.token).await;
    let last = seen["events"].as_array().and_then(|e| e.last()).cloned().unwrap_or_default();
    assert_eq!(last["event"], json!({"type": "AgentUnassigned"}), "the customer learns nobody has it, not who let it go");
    app.settle().await;
    let (_, list) = app.get("/api/v1/teams", &agent.token).await;
    assert_eq!(list["teams"][0]["waiting"], json!(1), "{list}");
    // Taken from the team: it waits without one.
    let (s, _) = app.post(&format!("/api/v1/conversations/{in_team}/team"), &agent.token, json!({"team_id": null})).await;
    assert_eq!(s, 200);
    app.settle().await;
    let (_, list) = app.get("/api/v1/teams", &agent.token).await;
    assert_eq!((&list["teams"][0]["waiting"], &list["waiting_without_team"]), (&json!(0), &json!(2)), "{list}");
}
