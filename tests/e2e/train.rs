//! Teaching the bot from the dashboard: an admin adds a customer's question
//! as a labelled example; the AI worker retrains in the background; the
//! model's state goes `training` → `trained`; the bot then answers the
//! question it handed off before.

use crate::app::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const QUESTION: &str = "Can I pay with my smartwatch?";
/// What `/chat` says when the bot hands off (`jamuna_gateway`'s seed routes).
const HANDOFF: &str = "I'm passing you to a human agent, who will answer here shortly.";
const ANSWER: &str = "Yes: add your card to Apple Pay or Google Pay on your watch and pay contactless.";

const EXAMPLES: &str = "text,category
Where is my new card?,card_arrival
My card has not arrived yet,card_arrival
When will my card be delivered?,card_arrival
How long does card delivery take?,card_arrival
I am still waiting for my card,card_arrival
I lost my card,lost_card
My card was stolen,lost_card
I can't find my card anywhere,lost_card
Someone took my wallet with my card in it,lost_card
How do I report a lost card?,lost_card
How do I change my PIN?,change_pin
I want a new PIN,change_pin
Can I reset my PIN code?,change_pin
I forgot my PIN,change_pin
Where can I update my PIN number?,change_pin
";

const ANSWERS: &str = "category,answer
card_arrival,New cards arrive within 5 working days.
lost_card,Freeze your card in the app under Cards > Freeze card.
change_pin,Change your PIN at any cash machine under PIN services.
";

async fn import(app: &App, admin: &str, csv: &str) -> Value {
    let r = app.http.post(app.url("/api/v1/kb/import")).bearer_auth(admin).header("content-type", "text/csv").body(csv.to_owned());
    let r = r.send().await.expect("the import is answered");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("a report")
}

/// What the bot says to `text` in a new visitor's conversation.
async fn ask(app: &App, text: &str) -> String {
    let (visitor, _) = app.visitor().await;
    let (s, body) = app.post("/chat", Some(&visitor), json!({"message": text})).await;
    assert_eq!(s, 200, "{body}");
    body["response"].as_str().expect("a response").to_owned()
}

#[tokio::test]
async fn an_example_added_from_the_dashboard_retrains_the_bot_which_then_answers() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let before = ask(&app, QUESTION).await;
    assert_eq!(before, HANDOFF, "the bot cannot answer it yet");

    import(&app, &admin, EXAMPLES).await;
    import(&app, &admin, ANSWERS).await;
    let (_, model) = app.get("/api/v1/kb/model", Some(&admin)).await;
    assert_eq!((model["examples"].as_u64(), model["state"].as_str()), (Some(15), Some("untrained")), "{model}");

    // The one-click fix: the customer's question, as an example of a new intent with its answer.
    let (s, body) = app.post("/api/v1/kb/examples", Some(&admin), json!({"text": QUESTION, "intent": "wearables", "answer": ANSWER})).await;
    assert_eq!((s, &body), (201, &json!({"added": true, "training": true})));
    let (_, model) = app.get("/api/v1/kb/model", Some(&admin)).await;
    assert_eq!(model["state"], "training", "{model}");
    assert!(model["requested_at"].is_string(), "{model}");

    let deadline = Instant::now() + Duration::from_secs(180);
    let model = loop {
        let (s, model) = app.get("/api/v1/kb/model", Some(&admin)).await;
        assert_eq!(s, 200, "{model}");
        if model["state"] == "trained" {
            break model;
        }
        assert_eq!(model["state"], "training", "{model}");
        assert!(Instant::now() < deadline, "still training after 3 minutes: {model}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!((model["trained"]["examples"].as_u64(), model["trained"]["intents"].as_u64()), (Some(16), Some(4)), "{model}");
    assert_eq!(model["requested_at"], Value::Null);
    assert_eq!(model["intents"], json!(["card_arrival", "change_pin", "lost_card", "wearables"]));

    // Every worker installs the recorded model (loaded from the cache the trainer wrote).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let after = ask(&app, QUESTION).await;
        if after == ANSWER {
            break;
        }
        assert!(Instant::now() < deadline, "the bot does not answer with the new intent: {after}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Asking again without a change asks for nothing: the model is current.
    let (s, body) = app.post("/api/v1/kb/train", Some(&admin), json!(null)).await;
    assert_eq!((s, body["state"].as_str()), (202, Some("trained")), "{body}");
}

/// A training cut short by a crash is done after the restart: whether a
/// request is pending is read from the log, not from the worker's checkpoint.
#[tokio::test]
async fn a_training_lost_in_a_crash_is_done_after_the_restart() {
    let mut app = spawn_app().await;
    let admin = app.login_admin().await;
    import(&app, &admin, EXAMPLES).await;
    let (s, body) = app.post("/api/v1/kb/train", Some(&admin), json!(null)).await;
    assert_eq!((s, body["state"].as_str()), (202, Some("training")), "{body}");
    // Killed before it could train (the worker waits a moment before it starts).
    app.child.kill().expect("the server is killed");
    app.child.wait().expect("the server is gone");

    let (child, base, _) = start(app.data.path());
    app.child = child;
    app.base = base;
    let admin = app.login_admin().await;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (s, model) = app.get("/api/v1/kb/model", Some(&admin)).await;
        assert_eq!(s, 200, "{model}");
        if model["state"] == "trained" {
            assert_eq!(model["trained"]["examples"].as_u64(), Some(15), "{model}");
            break;
        }
        assert_eq!(model["state"], "training", "{model}");
        assert!(Instant::now() < deadline, "still training after 3 minutes: {model}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Questions the tenant marks "hand these to a person" (the reserved intent
/// `out_of_scope`, from the dashboard's Gaps tab) are handed off at once, with
/// that reason, instead of getting a clarifying question or a guess.
#[tokio::test]
async fn questions_marked_for_a_person_are_handed_off_at_once_with_that_reason() {
    const MORTGAGE: &str = "Could I get a mortgage to buy a flat?";
    const MARKED: [&str; 6] = [
        "Do you offer mortgages?",
        "I want a home loan to buy a house",
        "What is your mortgage interest rate?",
        "Can I borrow money to buy an apartment?",
        "How much can I borrow for a house?",
        "I'd like to remortgage my home",
    ];
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    import(&app, &admin, EXAMPLES).await;
    import(&app, &admin, ANSWERS).await;
    let trained = |version: u64| {
        let (app, admin) = (&app, &admin);
        async move {
            poll("the model trained", async || {
                let (_, m) = app.get("/api/v1/kb/model", Some(admin)).await;
                (m["state"] == "trained" && m["trained"]["examples"].as_u64() == Some(15 + version)).then_some(())
            })
            .await
        }
    };
    let (s, body) = app.post("/api/v1/kb/train", Some(&admin), json!(null)).await;
    assert_eq!(s, 202, "{body}");
    trained(0).await;

    // The bot's first turn on the question, as staff see it.
    let first_turn = async |question: &str| -> Value {
        let (visitor, _) = app.visitor().await;
        let conversation = app.start_conversation(&visitor).await;
        app.say(&visitor, &conversation, "q1", question).await;
        let events = app.bot_turn(&admin, &conversation, 1).await;
        events
            .into_iter()
            .map(|e| e["event"].clone())
            .find(|e| matches!(e["type"].as_str(), Some("BotAnswered" | "HandoffRequested")))
            .expect("the bot's turn")
    };
    let before = first_turn(MORTGAGE).await;
    assert_ne!(before["reason"], "out_of_scope", "nothing is marked yet: {before}");

    // The admin marks such questions, one click each (`POST /api/v1/kb/examples`).
    for text in MARKED {
        let (s, body) = app.post("/api/v1/kb/examples", Some(&admin), json!({"text": text, "intent": "out_of_scope"})).await;
        assert_eq!(s, 201, "{body}");
    }
    trained(MARKED.len() as u64).await;
    let (_, model) = app.get("/api/v1/kb/model", Some(&admin)).await;
    assert!(model["intents"].as_array().unwrap().contains(&json!("out_of_scope")), "{model}");

    // Every worker installs the model; then the question is handed off at once.
    let after = poll("a handoff for the marked kind of question", async || {
        let turn = first_turn(MORTGAGE).await;
        (turn["reason"] == "out_of_scope").then_some(turn)
    })
    .await;
    assert_eq!(
        (after["type"].as_str(), after["why"]["basis"].as_str()),
        (Some("HandoffRequested"), Some("out_of_scope_example")),
        "{after}"
    );
    // The taught intents are still answered.
    let card = first_turn("Where is my new card?").await;
    assert_eq!((card["type"].as_str(), card["intent"].as_str()), (Some("BotAnswered"), Some("card_arrival")), "{card}");
}
