//! `/api/v1/conversations`: start, post, list and filter, detail, assign,
//! handoff, resolve and reopen, tags, feedback; who may do what.

use crate::app::*;
use jamuna_domain::user::Role;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn event_types(detail: &Value) -> Vec<&str> {
    detail["events"].as_array().expect("events").iter().map(event_type).collect()
}

#[tokio::test]
async fn a_customer_starts_a_conversation_and_reads_it_back() {
    let app = spawn_app().await;
    let customer = app.visitor().await;

    let (s, body) = app.start_conversation(&customer.token, "mobile").await;
    assert_eq!(s, 201, "{body}");
    let id = body["id"].as_str().expect("an id");

    let (s, detail) = app.conversation(&customer.token, id).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(detail["id"], id);
    assert_eq!(detail["customer"], customer.id.as_str());
    assert_eq!(detail["channel"], "mobile");
    assert_eq!(detail["status"], "open");
    assert_eq!(detail["version"], 1);
    assert_eq!(detail["human_involved"], false);
    assert_eq!(detail["assignee"], Value::Null);
    assert_eq!(detail.get("tags"), None, "tags are for staff");
    assert_eq!(event_types(&detail), ["ConversationStarted"]);
    let started = &detail["events"][0];
    assert_eq!(
        (started["type"].as_str(), started["conversation_id"].as_str(), started["version"].as_u64()),
        (Some("event"), Some(id), Some(1))
    );

    // The channel defaults to web; an unknown one, an unknown field or no token is refused.
    let (s, body) = app.post("/api/v1/conversations", &customer.token, json!({})).await;
    assert_eq!(s, 201, "{body}");
    let (_, detail) = app.conversation(&customer.token, body["id"].as_str().expect("an id")).await;
    assert_eq!(detail["channel"], "web");
    let (s, body) = app.start_conversation(&customer.token, "carrier-pigeon").await;
    assert_eq!((s, code(&body)), (400, "bad_request"), "{body}");
    let (s, body) = app.post("/api/v1/conversations", &customer.token, json!({"channel": "web", "priority": 1})).await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = app.call(reqwest::Method::POST, "/api/v1/conversations", None, Some(json!({}))).await;
    assert_eq!((s, code(&body)), (401, "unauthorized"), "{body}");
}

#[tokio::test]
async fn staff_do_not_start_conversations_and_customers_do_not_manage_them() {
    let app = spawn_app().await;
    let agent = app.staff(Role::Agent, "Ana").await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;

    let (s, body) = app.start_conversation(&agent.token, "web").await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
    let (s, body) = app.start_conversation(&app.admin.token, "web").await;
    assert_eq!(s, 403, "{body}");

    // Staff-only operations, asked by the conversation's own customer.
    let (s, body) = app.assign(&customer.token, &id, None).await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
    let (s, body) = app.assign(&customer.token, &id, Some(&agent.id)).await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = app.tags(&customer.token, &id, &["vip"], &[]).await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
    // Feedback is the customer's alone.
    app.resolve(&agent.token, &id).await;
    let (s, body) = app.feedback(&agent.token, &id, json!({"kind": "csat", "score": 5})).await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");

    let (_, detail) = app.conversation(&customer.token, &id).await;
    assert_eq!(event_types(&detail), ["ConversationStarted", "ConversationResolved"], "nothing refused was stored: {detail}");
}

#[tokio::test]
async fn another_customers_conversation_is_not_found_whatever_is_asked_of_it() {
    let app = spawn_app().await;
    let alice = app.visitor().await;
    let mallory = app.visitor().await;
    let id = app.new_conversation(&alice).await;
    app.resolve(&alice.token, &id).await;

    for (what, (s, body)) in [
        ("detail", app.conversation(&mallory.token, &id).await),
        ("post", app.post_message(&mallory.token, &id, "m1", "hello").await),
        ("handoff", app.handoff(&mallory.token, &id).await),
        ("resolve", app.resolve(&mallory.token, &id).await),
        ("reopen", app.reopen(&mallory.token, &id).await),
        ("feedback", app.feedback(&mallory.token, &id, json!({"kind": "csat", "score": 1})).await),
    ] {
        assert_eq!((s, code(&body)), (404, "not_found"), "{what}: {body}");
    }
    // Unknown and malformed ids are the same "not found": ids cannot be probed.
    let (s, body) = app.conversation(&alice.token, "0197f000-0000-7000-8000-000000000000").await;
    assert_eq!((s, code(&body)), (404, "not_found"), "{body}");
    let (s, body) = app.conversation(&alice.token, "no.such").await;
    assert_eq!((s, code(&body)), (404, "not_found"), "{body}");

    // Staff of another tenant see nothing of it either.
    let intruder = app.other_tenant_admin("globex").await;
    let (s, _) = app.conversation(&intruder.token, &id).await;
    assert_eq!(s, 404);
    let (s, _) = app.assign(&intruder.token, &id, None).await;
    assert_eq!(s, 404);

    let (_, detail) = app.conversation(&alice.token, &id).await;
    assert_eq!(detail["version"], 2, "nothing was stored: {detail}");
}

#[tokio::test]
async fn messages_carry_their_author_and_the_detail_names_the_agents_who_took_part() {
    let app = spawn_app().await;
    let agent = app.staff(Role::Agent, "Ana").await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;

    let (s, ack) = app.post_message(&customer.token, &id, "c1", "Where is my parcel?").await;
    assert_eq!(s, 201, "{ack}");
    assert_eq!((ack["conversation_id"].as_str(), ack["client_message_id"].as_str()), (Some(id.as_str()), Some("c1")));
    assert_eq!((ack["version"].as_u64(), ack["duplicate"].as_bool()), (Some(2), Some(false)));
    assert_eq!(ack["position"], Value::Null, "a log position is for staff: {ack}");

    let (s, ack) = app.post_message(&agent.token, &id, "a1", "Let me check for you.").await;
    assert_eq!(s, 201, "{ack}");
    assert_eq!(ack["version"], 3);
    assert!(ack["position"].as_u64().is_some(), "{ack}");
    // A retry of the agent's message is stored once.
    let (s, again) = app.post_message(&agent.token, &id, "a1", "Let me check for you.").await;
    assert_eq!((s, again["version"].as_u64(), again["duplicate"].as_bool(), &again["position"]), (200, Some(3), Some(true), &Value::Null));

    let (_, detail) = app.conversation(&customer.token, &id).await;
    let events = detail["events"].as_array().expect("events");
    assert_eq!(event_types(&detail), ["ConversationStarted", "MessagePosted", "MessagePosted"]);
    assert_eq!(events[1]["event"]["author"]["kind"], "customer");
    assert_eq!(events[1]["event"]["text"], "Where is my parcel?");
    // The customer knows the agent by an alias, the same in the events and the names.
    let alias = events[2]["event"]["author"]["id"].as_str().expect("an alias").to_owned();
    assert_eq!(events[2]["event"]["author"]["kind"], "agent");
    assert_ne!(alias, agent.id.as_str());
    assert_eq!(detail["agents"], json!([{"id": alias, "name": "Ana"}]), "the display name, never the e-mail");
    assert_eq!(detail["human_involved"], true);
    let (_, staff) = app.conversation(&agent.token, &id).await;
    assert_eq!(staff["events"][2]["event"]["author"], json!({"kind": "agent", "id": agent.id}));
    assert_eq!(staff["agents"], json!([{"id": agent.id, "name": "Ana"}]));

    // Bad messages are refused with the API's error shape, and a resolved conversation takes none.
    let (s, body) = app.post_message(&customer.token, &id, "c2", " ").await;
    assert_eq!((s, code(&body)), (400, "bad_request"), "{body}");
    let (s, body) = app.post_message(&customer.token, &id, "", "hello").await;
    assert_eq!((s, code(&body)), (400, "bad_request"), "{body}");
    app.resolve(&agent.token, &id).await;
    let (s, body) = app.post_message(&customer.token, &id, "c3", "one more thing").await;
    assert_eq!((s, code(&body)), (409, "already_resolved"), "{body}");
}

#[tokio::test]
async fn assign_resolve_reopen_and_handoff_change_the_state_and_say_when_nothing_changed() {
    let app = spawn_app().await;
    let ana = app.staff(Role::Agent, "Ana").await;
    let bo = app.staff(Role::Agent, "Bo").await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;

    // The customer asks for a human: pending, once.
    let (s, r) = app.handoff(&customer.token, &id).await;
    assert_eq!((s, r["changed"].as_bool(), r["version"].as_u64()), (200, Some(true), Some(2)), "{r}");
    let (_, detail) = app.conversation(&ana.token, &id).await;
    assert_eq!((detail["status"].as_str(), detail["human_involved"].as_bool()), (Some("pending"), Some(true)));
    let (s, r) = app.handoff(&customer.token, &id).await;
    assert_eq!((s, r["changed"].as_bool(), r["version"].as_u64()), (200, Some(false), Some(2)), "{r}");

    // "Assign to me", then to a colleague; the same assignment twice changes nothing.
    let (s, r) = app.assign(&ana.token, &id, None).await;
    assert_eq!((s, r["id"].as_str(), r["changed"].as_bool(), r["version"].as_u64()), (200, Some(id.as_str()), Some(true), Some(3)), "{r}");
    let (_, detail) = app.conversation(&ana.token, &id).await;
    assert_eq!((detail["assignee"].as_str(), detail["status"].as_str()), (Some(ana.id.as_str()), Some("open")));
    let (s, r) = app.assign(&ana.token, &id, Some(&bo.id)).await;
    assert_eq!((s, r["changed"].as_bool()), (200, Some(true)), "{r}");
    let (s, r) = app.assign(&app.admin.token, &id, Some(&bo.id)).await;
    assert_eq!((s, r["changed"].as_bool(), r["version"].as_u64()), (200, Some(false), Some(4)), "{r}");
    let (_, detail) = app.conversation(&ana.token, &id).await;
    assert_eq!(detail["assignee"], bo.id.as_str());

    // Only staff of the tenant can be assigned.
    let (s, body) = app.assign(&ana.token, &id, Some(&customer.id)).await;
    assert_eq!((s, code(&body)), (409, "not_an_agent"), "{body}");
    let (s, body) = app.assign(&ana.token, &id, Some("0197f000-0000-7000-8000-000000000000")).await;
    assert_eq!((s, code(&body)), (404, "not_found"), "{body}");
    let (s, body) = app.assign(&ana.token, &id, Some("not an id")).await;
    assert_eq!((s, code(&body)), (400, "bad_request"), "{body}");

    // Resolve once; reopen once.
    let (s, r) = app.resolve(&bo.token, &id).await;
    assert_eq!((s, r["changed"].as_bool(), r["version"].as_u64()), (200, Some(true), Some(5)), "{r}");
    let (s, body) = app.resolve(&bo.token, &id).await;
    assert_eq!((s, code(&body)), (409, "already_resolved"), "{body}");
    let (s, body) = app.assign(&ana.token, &id, None).await;
    assert_eq!((s, code(&body)), (409, "already_resolved"), "{body}");
    let (s, r) = app.reopen(&customer.token, &id).await;
    assert_eq!((s, r["changed"].as_bool(), r["version"].as_u64()), (200, Some(true), Some(6)), "{r}");
    let (s, body) = app.reopen(&customer.token, &id).await;
    assert_eq!((s, code(&body)), (409, "not_resolved"), "{body}");

    let (_, detail) = app.conversation(&customer.token, &id).await;
    assert_eq!(
        event_types(&detail),
        ["ConversationStarted", "HandoffRequested", "AgentAssigned", "AgentAssigned", "ConversationResolved", "ConversationReopened"]
    );
    assert_eq!(detail["status"], "open");
    // The customer knows the staff by their aliases; staff by their ids.
    let (ana_alias, bo_alias) = (&detail["events"][2]["event"]["agent"], &detail["events"][3]["event"]["agent"]);
    assert_eq!(&detail["events"][4]["event"]["by"], bo_alias);
    assert_eq!(detail["events"][5]["event"]["by"], customer.id.as_str(), "their own id");
    assert_eq!(detail["agents"], json!([{"id": ana_alias, "name": "Ana"}, {"id": bo_alias, "name": "Bo"}]));
    assert!(!detail.to_string().contains(ana.id.as_str()) && !detail.to_string().contains(bo.id.as_str()), "{detail}");
    let (_, detail) = app.conversation(&ana.token, &id).await;
    assert_eq!(detail["events"][4]["event"]["by"], bo.id.as_str());
    assert_eq!(detail["agents"], json!([{"id": ana.id, "name": "Ana"}, {"id": bo.id, "name": "Bo"}]));
}

#[tokio::test]
async fn tags_are_normalised_added_and_removed_by_staff() {
    let app = spawn_app().await;
    let agent = app.staff(Role::Agent, "Ana").await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;

    let (s, r) = app.tags(&agent.token, &id, &["  VIP ", "billing"], &[]).await;
    assert_eq!((s, r["changed"].as_bool()), (200, Some(true)), "{r}");
    let (_, detail) = app.conversation(&agent.token, &id).await;
    assert_eq!(detail["tags"], json!(["billing", "vip"]));
    let (s, r) = app.tags(&agent.token, &id, &["vip"], &["unknown"]).await;
    assert_eq!((s, r["changed"].as_bool()), (200, Some(false)), "nothing to change: {r}");
    let (s, r) = app.tags(&agent.token, &id, &["refund"], &["billing"]).await;
    assert_eq!((s, r["changed"].as_bool()), (200, Some(true)), "{r}");
    let (_, detail) = app.conversation(&agent.token, &id).await;
    assert_eq!(detail["tags"], json!(["refund", "vip"]));
    let last = detail["events"].as_array().expect("events").last().cloned().unwrap_or_default();
    assert_eq!(last["event"], json!({"type": "TagsChanged", "added": ["refund"], "removed": ["billing"]}));

    let (s, body) = app.tags(&agent.token, &id, &[&"x".repeat(33)], &[]).await;
    assert_eq!((s, code(&body)), (400, "bad_request"), "{body}");
    let (s, body) = app.tags(&agent.token, &id, &[" "], &[]).await;
    assert_eq!((s, code(&body)), (400, "bad_request"), "{body}");
}

#[tokio::test]
async fn feedback_comes_from_the_customer_once_the_conversation_is_resolved() {
    let app = spawn_app().await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;

    let (s, body) = app.feedback(&customer.token, &id, json!({"kind": "csat", "score": 5})).await;
    assert_eq!((s, code(&body)), (409, "not_resolved"), "{body}");
    app.resolve(&customer.token, &id).await;
    let (s, body) = app.feedback(&customer.token, &id, json!({"kind": "csat", "score": 6})).await;
    assert_eq!((s, code(&body)), (409, "invalid_score"), "{body}");
    let (s, body) = app.feedback(&customer.token, &id, json!({"kind": "csat", "score": 5, "comment": "x".repeat(1001)})).await;
    assert_eq!((s, code(&body)), (409, "comment_too_long"), "{body}");
    let (s, body) = app.feedback(&customer.token, &id, json!({"kind": "answer", "answer_version": 2, "helpful": true})).await;
    assert_eq!((s, code(&body)), (409, "unknown_answer"), "no bot answered: {body}");
    let (s, body) = app.feedback(&customer.token, &id, json!({"kind": "stars", "score": 5})).await;
    assert_eq!((s, code(&body)), (400, "bad_request"), "{body}");

    let (s, r) = app.feedback(&customer.token, &id, json!({"kind": "csat", "score": 4, "comment": "quick and kind"})).await;
    assert_eq!((s, r["changed"].as_bool(), r["version"].as_u64()), (200, Some(true), Some(3)), "{r}");
    let (_, detail) = app.conversation(&customer.token, &id).await;
    assert_eq!(detail["csat"], 4);
    let given = &detail["events"][2]["event"];
    assert_eq!((given["type"].as_str(), given["feedback"]["score"].as_u64()), (Some("FeedbackGiven"), Some(4)), "{given}");
    assert_eq!(given["feedback"]["comment"], "quick and kind");

    // A verdict on a bot answer needs an answer at that version, resolved or not.
    let id = app.new_conversation(&customer).await;
    app.post_message(&customer.token, &id, "q1", "when does my card arrive").await;
    app.bot_answers(&id, 2, "Within 5 working days.").await;
    let (s, body) = app.feedback(&customer.token, &id, json!({"kind": "answer", "answer_version": 2, "helpful": true})).await;
    assert_eq!((s, code(&body)), (409, "unknown_answer"), "version 2 is the question: {body}");
    let (s, r) = app.feedback(&customer.token, &id, json!({"kind": "answer", "answer_version": 3, "helpful": false})).await;
    // A 👎 while the bot has the conversation also hands it to a human, in the same append.
    assert_eq!((s, r["version"].as_u64()), (200, Some(5)), "{r}");
    let (_, detail) = app.conversation(&customer.token, &id).await;
    assert_eq!(detail["events"][3]["event"]["feedback"], json!({"kind": "answer", "answer_version": 3, "helpful": false}));
    assert_eq!(detail["events"][4]["event"]["type"], "HandoffRequested", "{detail}");
    assert_eq!(detail["csat"], Value::Null);
}

#[tokio::test]
async fn lists_show_a_customer_their_own_and_staff_their_views_filters_and_pages() {
    let app = spawn_app().await;
    let ana = app.staff(Role::Agent, "Ana").await;
    let alice = app.visitor().await;
    let bob = app.visitor().await;

    // a: alice's, assigned to ana, tagged; b: bob's, mobile, waiting for a human; c: bob's, resolved.
    let a = app.new_conversation(&alice).await;
    app.post_message(&alice.token, &a, "a1", "my card was swallowed by the machine").await;
    app.assign(&ana.token, &a, None).await;
    app.tags(&ana.token, &a, &["cards"], &[]).await;
    let (_, b) = app.start_conversation(&bob.token, "mobile").await;
    let b = b["id"].as_str().expect("an id").to_owned();
    app.handoff(&bob.token, &b).await;
    let c = app.new_conversation(&bob).await;
    app.post_message(&bob.token, &c, "c1", "how do I change my address").await;
    app.resolve(&bob.token, &c).await;
    app.settle().await;

    // Newest activity first; customers see only their own, whatever view they ask for.
    assert_eq!(app.listed(&ana.token, "").await, [c.as_str(), b.as_str(), a.as_str()]);
    assert_eq!(app.listed(&alice.token, "").await, [a.as_str()]);
    assert_eq!(app.listed(&bob.token, "view=unassigned").await, [b.as_str()]);
    let (_, page) = app.list_conversations(&alice.token, "").await;
    let summary = &page["items"][0];
    assert_eq!(summary["customer"].as_str(), Some(alice.id.as_str()));
    assert!(summary["assignee"].as_str().is_some_and(|a| a != ana.id.as_str()), "the agent's alias: {summary}");
    assert_eq!((summary["status"].as_str(), summary["channel"].as_str()), (Some("open"), Some("web")));
    assert_eq!((summary.get("tags"), summary.get("position")), (None, None), "staff only: {summary}");
    let (s, body) = app.list_conversations(&alice.token, "tag=cards").await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "a tag filter would tell a customer the tags: {body}");
    let (_, page) = app.list_conversations(&ana.token, "status=open").await;
    let summary = &page["items"][0];
    assert_eq!((summary["assignee"].as_str(), &summary["tags"]), (Some(ana.id.as_str()), &json!(["cards"])));

    // Views, filters and search.
    assert_eq!(app.listed(&ana.token, "view=mine").await, [a.as_str()]);
    assert_eq!(app.listed(&app.admin.token, "view=mine").await, Vec::<String>::new());
    assert_eq!(app.listed(&ana.token, "view=unassigned").await, [b.as_str()]);
    assert_eq!(app.listed(&ana.token, "view=pending").await, [b.as_str()]);
    assert_eq!(app.listed(&ana.token, "view=resolved").await, [c.as_str()]);
    assert_eq!(app.listed(&ana.token, "status=open").await, [a.as_str()]);
    assert_eq!(app.listed(&ana.token, "tag=cards").await, [a.as_str()]);
    assert_eq!(app.listed(&ana.token, "channel=mobile").await, [b.as_str()]);
    assert_eq!(app.listed(&ana.token, "q=address").await, [c.as_str()]);
    assert_eq!(app.listed(&ana.token, "q=%20").await.len(), 3, "a blank search is no search");

    // Pages of one, chained by the cursor, visit each once.
    let mut seen = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let (s, page) = app.list_conversations(&ana.token, &query).await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 1, "{page}");
        seen.extend(items.iter().map(|i| i["id"].as_str().expect("an id").to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=1&cursor={cursor}"),
            None => break,
        }
        assert!(seen.len() <= 3, "the cursor keeps going: {seen:?}");
    }
    assert_eq!(seen, [c, b, a]);

    // Bad parameters are refused.
    for query in ["limit=0", "limit=101", "status=closed", "channel=fax", "view=everything", "colour=red", "tag=%20", "cursor=nonsense"] {
        let (s, body) = app.list_conversations(&ana.token, query).await;
        assert_eq!(s, 400, "{query}: {body}");
    }
    let (s, _) = app.call(reqwest::Method::GET, "/api/v1/conversations", None, None).await;
    assert_eq!(s, 401);
}
