//! The content gaps against the real binary: questions the bot could not
//! answer, grouped by meaning with the model, counted, with the agent's reply;
//! a 👎 on an answer hands the conversation to a human and shows up too.

use crate::app::*;
use serde_json::json;

/// Asks an out-of-scope question until the bot hands off (it may first ask
/// to clarify, once): the reason it gave.
async fn ask_until_handed_off(app: &App, admin: &str, customer: &str, conversation: &str, questions: [&str; 2]) -> String {
    app.say(customer, conversation, "q1", questions[0]).await;
    let events = app.bot_turn(admin, conversation, 1).await;
    let last = &events.last().expect("an event")["event"];
    let handoff = if last["type"] == "HandoffRequested" {
        last.clone()
    } else {
        assert_eq!(last["intent"], "clarify", "the bot does not answer an out-of-scope question: {last}");
        app.say(customer, conversation, "q2", questions[1]).await;
        let events = app.bot_turn(admin, conversation, events.len()).await;
        events.last().expect("an event")["event"].clone()
    };
    assert_eq!(handoff["type"], "HandoffRequested", "{handoff}");
    handoff["reason"].as_str().expect("a reason").to_owned()
}

#[tokio::test]
async fn unknown_questions_and_a_thumbs_down_show_up_grouped_with_counts_and_the_agents_reply() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;

    // Two customers ask much the same thing, which no article covers.
    let (first, _) = app.visitor().await;
    let c1 = app.start_conversation(&first).await;
    let r1 = ask_until_handed_off(
        &app,
        &admin,
        &first,
        &c1,
        ["Can I bring my pet iguana into the airplane cabin?", "I mean my pet iguana, can it fly with me in the airplane cabin?"],
    )
    .await;
    let (second, _) = app.visitor().await;
    let c2 = app.start_conversation(&second).await;
    let r2 = ask_until_handed_off(
        &app,
        &admin,
        &second,
        &c2,
        ["Is my pet iguana allowed in the airplane cabin?", "My iguana, the pet, in the cabin of the airplane: allowed?"],
    )
    .await;
    for r in [&r1, &r2] {
        assert!(r == "low_confidence" || r == "repeated_failure", "{r}");
    }
    // An agent answers the first.
    app.say(&admin, &c1, "a1", "Iguanas travel in the hold; ask your airline.").await;

    // A third customer gets an answer from the knowledge base and gives it a 👎.
    let (third, _) = app.visitor().await;
    let c3 = app.start_conversation(&third).await;
    app.say(&third, &c3, "q1", "When will my new card arrive?").await;
    let events = app.bot_turn(&admin, &c3, 1).await;
    let answer = events.iter().find(|e| e["event"]["type"] == "BotAnswered").expect("the bot answers from the knowledge base");
    let version = answer["version"].as_u64().expect("a version");
    let (s, b) = app
        .post(
            &format!("/api/v1/conversations/{c3}/feedback"),
            Some(&third),
            json!({"kind": "answer", "answer_version": version, "helpful": false}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, d) = app.get(&format!("/api/v1/conversations/{c3}"), Some(&admin)).await;
    assert_eq!(d["status"], "pending", "a 👎 hands the conversation to a human: {d}");

    // The gaps: the two iguana questions in one group, the 👎 in another.
    let body = poll("the gaps", async || {
        let (s, b) = app.get("/api/v1/analytics/gaps?limit=10", Some(&admin)).await;
        assert_eq!(s, 200, "{b}");
        let groups = b["groups"].as_array().cloned().unwrap_or_default();
        let replied = groups.iter().any(|g| g["examples"].as_array().is_some_and(|x| x.iter().any(|e| !e["agent_reply"].is_null())));
        let disliked = groups.iter().any(|g| g["reasons"]["negative_feedback"] == 1);
        (replied && disliked).then_some(b)
    })
    .await;
    let groups = body["groups"].as_array().expect("groups");
    let iguana = &groups[0];
    assert_eq!(iguana["count"], 2, "similar questions share a group, most frequent first: {body}");
    let reasons = &iguana["reasons"];
    let by_reason = |r: &str| reasons[r].as_u64().expect("a count");
    assert_eq!(by_reason("low_confidence") + by_reason("repeated_failure"), 2, "{body}");
    assert_eq!(by_reason("negative_feedback"), 0);
    assert!(iguana["question"].as_str().is_some_and(|q| q.contains("iguana")), "{body}");
    assert!(iguana["id"].as_str().is_some_and(|i| !i.is_empty()) && iguana["last_at"].is_string());
    let examples = iguana["examples"].as_array().expect("examples");
    assert_eq!(examples.len(), 2);
    let from_c1 = examples.iter().find(|e| e["conversation_id"] == c1.as_str()).expect("the first conversation's example");
    assert_eq!(from_c1["agent_reply"], "Iguanas travel in the hold; ask your airline.");
    assert!(from_c1["bot_answer"].is_null() && from_c1["at"].is_string());
    let disliked = groups.iter().find(|g| g["reasons"]["negative_feedback"] == 1).expect("the 👎 group");
    assert_eq!(disliked["count"], 1);
    let e = &disliked["examples"][0];
    assert_eq!((e["conversation_id"].as_str(), e["question"].as_str()), (Some(c3.as_str()), Some("When will my new card arrive?")));
    assert_eq!(e["bot_answer"], answer["event"]["text"], "{body}");
    assert_eq!(e["reason"], "negative_feedback");

    // Staff only, and the limit is checked.
    let (s, _) = app.get("/api/v1/analytics/gaps", Some(&third)).await;
    assert_eq!(s, 403);
    for bad in ["0", "201", "x"] {
        let (s, b) = app.get(&format!("/api/v1/analytics/gaps?limit={bad}"), Some(&admin)).await;
        assert_eq!(s, 400, "limit={bad}: {b}");
    }
    let (s, b) = app.get("/api/v1/analytics/gaps?limit=1", Some(&admin)).await;
    assert_eq!((s, b["groups"].as_array().map(Vec::len)), (200, Some(1)));
}
