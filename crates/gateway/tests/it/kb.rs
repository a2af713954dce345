//! `/api/v1/kb`: articles added, updated, removed and listed; files
//! imported (articles, labelled examples, intent answers); labelled examples
//! listed; staff read it, admins change it, customers neither.

use crate::app::*;
use jamuna_commands::handler::CommandContext;
use jamuna_domain::StreamId;
use jamuna_domain::knowledge_base::{KnowledgeBase, KnowledgeBaseCommand, OUT_OF_SCOPE_INTENT};
use jamuna_domain::user::Role;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// The ids of the articles listed, in order.
async fn article_ids(app: &TestApp, token: &str) -> Vec<String> {
    let (s, body) = app.kb_articles(token).await;
    assert_eq!(s, 200, "{body}");
    body["items"].as_array().expect("items").iter().map(|a| a["id"].as_str().expect("an id").to_owned()).collect()
}

#[tokio::test]
async fn admins_add_update_and_remove_articles_and_the_list_shows_the_latest() {
    let app = spawn_app().await;
    let admin = &app.admin.token;
    assert_eq!(article_ids(&app, admin).await, Vec::<String>::new());

    let (s, body) =
        app.kb_add_article(admin, json!({"id": "fees", "title": " Fees ", "body": "No monthly fee.", "source": "fees.md"})).await;
    assert_eq!((s, &body), (201, &json!({"id": "fees"})));
    // Without an id, the title's slug is the id.
    let (s, body) = app.kb_add_article(admin, json!({"title": "Opening Hours?", "body": "Around the clock."})).await;
    assert_eq!((s, &body), (201, &json!({"id": "opening-hours"})));

    let (_, list) = app.kb_articles(admin).await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    let fees = &items[0];
    assert_eq!((fees["id"].as_str(), fees["title"].as_str(), fees["body"].as_str()), (Some("fees"), Some("Fees"), Some("No monthly fee.")));
    assert_eq!((fees["source"].as_str(), fees["citations"].as_u64()), (Some("fees.md"), Some(0)));
    assert_eq!(fees["created_at"], fees["updated_at"]);
    assert_eq!((items[1]["id"].as_str(), items[1]["source"].clone()), (Some("opening-hours"), Value::Null));

    // Refusals name their rule.
    for (article, expected) in [
        (json!({"id": "fees", "title": "Fees again", "body": "x"}), (409, "article_exists")),
        (json!({"title": "  ", "body": "x"}), (409, "invalid_title")),
        (json!({"id": "blank", "title": "Blank", "body": " "}), (409, "invalid_body")),
        (json!({"id": "no spaces!", "title": "Bad id", "body": "x"}), (400, "bad_request")),
        (json!({"title": "No body"}), (400, "bad_request")),
    ] {
        let (s, body) = app.kb_add_article(admin, article.clone()).await;
        assert_eq!((s, code(&body)), expected, "{article}: {body}");
    }

    // An update says whether it changed anything.
    let (s, body) = app.kb_update_article(admin, "fees", "Fees", "No monthly fee; cards are free.").await;
    assert_eq!((s, &body), (200, &json!({"id": "fees", "changed": true})));
    let (s, body) = app.kb_update_article(admin, "fees", "Fees", "No monthly fee; cards are free.").await;
    assert_eq!((s, &body), (200, &json!({"id": "fees", "changed": false})));
    let (s, body) = app.kb_update_article(admin, "nothing-here", "Title", "Body").await;
    assert_eq!((s, code(&body)), (409, "unknown_article"), "{body}");
    let (s, body) = app.kb_update_article(admin, "bad.id", "Title", "Body").await;
    assert_eq!((s, code(&body)), (404, "not_found"), "{body}");
    let (s, body) = app.kb_update_article(admin, "fees", "", "Body").await;
    assert_eq!((s, code(&body)), (409, "invalid_title"), "{body}");
    let (_, list) = app.kb_articles(admin).await;
    let fees = &list["items"][0];
    assert_eq!(fees["body"], "No monthly fee; cards are free.");
    assert_eq!(fees["source"], "fees.md", "an update keeps the source");
    let at = |field: &str| chrono::DateTime::parse_from_rfc3339(fees[field].as_str().expect("a time")).expect("RFC 3339");
    assert!(at("updated_at") > at("created_at"), "{fees}");

    let (s, body) = app.kb_remove_article(admin, "opening-hours").await;
    assert_eq!((s, body), (204, Value::Null));
    let (s, body) = app.kb_remove_article(admin, "bad.id").await;
    assert_eq!((s, code(&body)), (404, "not_found"), "{body}");
    assert_eq!(article_ids(&app, admin).await, ["fees"]);
}

#[tokio::test]
async fn staff_read_the_knowledge_base_admins_change_it_and_customers_do_neither() {
    let app = spawn_app().await;
    let (s, _) = app.kb_add_article(&app.admin.token, json!({"id": "fees", "title": "Fees", "body": "No monthly fee."})).await;
    assert_eq!(s, 201);
    let agent = app.staff(Role::Agent, "Ana").await;
    let customer = app.visitor().await;

    assert_eq!(article_ids(&app, &agent.token).await, ["fees"]);
    for who in [&agent, &customer] {
        let (s, body) = app.kb_add_article(&who.token, json!({"title": "Mine", "body": "x"})).await;
        assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
        let (s, body) = app.kb_update_article(&who.token, "fees", "Fees", "Everything is free.").await;
        assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
        let (s, body) = app.kb_remove_article(&who.token, "fees").await;
        assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
        let (s, body) = app.kb_import(&who.token, "text/markdown", "# Mine\nx").await;
        assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
    }
    let (s, body) = app.kb_articles(&customer.token).await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
    let (s, _) = app.call(reqwest::Method::GET, "/api/v1/kb/articles", None, None).await;
    assert_eq!(s, 401);

    // Each tenant has its own knowledge base.
    let other = app.other_tenant_admin("globex").await;
    assert_eq!(article_ids(&app, &other.token).await, Vec::<String>::new());
    let (s, body) = app.kb_remove_article(&other.token, "fees").await;
    assert_eq!((s, code(&body)), (409, "unknown_article"), "{body}");
    let (_, list) = app.kb_articles(&app.admin.token).await;
    assert_eq!(list["items"][0]["body"], "No monthly fee.", "nothing changed: {list}");
}

#[tokio::test]
async fn article_files_import_by_content_type_whole_or_not_at_all() {
    let app = spawn_app().await;
    let admin = &app.admin.token;

    let (s, body) = app.kb_import(admin, "text/markdown; charset=utf-8", "# Card delivery\nCards arrive within 5 days.\n").await;
    assert_eq!((s, &body), (200, &json!({"added": 1, "updated": 0, "unchanged": 0})));
    let (_, list) = app.kb_articles(admin).await;
    assert_eq!(list["items"][0]["id"], "card-delivery");
    assert_eq!(
        (list["items"][0]["body"].as_str(), list["items"][0]["source"].as_str()),
        (Some("Cards arrive within 5 days."), Some("upload"))
    );

    // JSON: one new, one changed (by title), reported as such.
    let file = json!([
        {"title": "Card delivery", "body": "Cards arrive within 3 days."},
        {"question": "Can I pay with my phone?", "answer": "Yes, with Apple Pay and Google Pay."},
    ])
    .to_string();
    let (s, body) = app.kb_import(admin, "application/json", file.as_str()).await;
    assert_eq!((s, &body), (200, &json!({"added": 1, "updated": 1, "unchanged": 0})));
    let (s, body) = app.kb_import(admin, "application/json", file.as_str()).await;
    assert_eq!((s, &body), (200, &json!({"added": 0, "updated": 0, "unchanged": 2})));
    assert_eq!(article_ids(&app, admin).await, ["can-i-pay-with-my-phone", "card-delivery"]);

    // Refused files store nothing.
    for (content_type, file, why) in [
        ("text/plain", b"# Title\nBody".to_vec(), "an unknown content type"),
        ("text/markdown", b"# Caf\xe9\nnot UTF-8".to_vec(), "not UTF-8"),
        ("text/markdown", b"no heading".to_vec(), "a Markdown file without a title"),
        ("application/json", b"[]".to_vec(), "an empty array"),
        (
            "application/json",
            b"[{\"title\": \"New one\", \"body\": \"fine\"},\n {\"title\": \"Broken\"}]".to_vec(),
            "an item without a body",
        ),
        ("text/csv", b"name,colour\nx,y\n".to_vec(), "an unknown CSV header"),
    ] {
        let (s, body) = app.kb_import(admin, content_type, file).await;
        assert_eq!((s, code(&body)), (400, "bad_request"), "{why}: {body}");
    }
    let (_, body) =
        app.kb_import(admin, "application/json", "[{\"title\": \"New one\", \"body\": \"fine\"},\n {\"title\": \"Broken\"}]").await;
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("line 2")), "the error names its line: {body}");
    assert_eq!(article_ids(&app, admin).await, ["can-i-pay-with-my-phone", "card-delivery"]);
}

#[tokio::test]
async fn labelled_examples_and_intent_answers_import_from_csv_and_are_not_articles() {
    let app = spawn_app().await;
    let admin = &app.admin.token;

    let examples = "text,category\nwhere is my card,card_arrival\nmy card has not come,card_arrival\nI lost my card,lost_card\n";
    let (s, body) = app.kb_import(admin, "text/csv", examples).await;
    assert_eq!((s, &body), (200, &json!({"added": 3, "updated": 0, "unchanged": 0})));
    // Known examples are not added twice; a new one is.
    let more = format!("{examples}card stolen,lost_card\n");
    let (s, body) = app.kb_import(admin, "text/csv", more).await;
    assert_eq!((s, &body), (200, &json!({"added": 1, "updated": 0, "unchanged": 3})));

    let answers = "category,answer\ncard_arrival,Cards arrive within 5 working days.\nlost_card,Freeze it in the app.\n";
    let (s, body) = app.kb_import(admin, "text/csv", answers).await;
    assert_eq!((s, &body), (200, &json!({"added": 2, "updated": 0, "unchanged": 0})));
    let changed = "category,answer\ncard_arrival,Cards arrive within 3 working days.\nlost_card,Freeze it in the app.\n";
    let (s, body) = app.kb_import(admin, "text/csv", changed).await;
    assert_eq!((s, &body), (200, &json!({"added": 1, "updated": 0, "unchanged": 1})));

    for (file, line) in [
        ("text,category\nfine,card_arrival\n,lost_card\n", "line 3"),
        ("category,answer\nlost_card,Freeze it.\nlost_card,Call us.\n", "line 3"),
    ] {
        let (s, body) = app.kb_import(admin, "text/csv", file).await;
        assert_eq!((s, code(&body)), (400, "bad_request"), "{file}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(line)), "{file}: {body}");
    }
    assert_eq!(article_ids(&app, admin).await, Vec::<String>::new(), "examples and answers are not articles");

    // Staff may not import them either.
    let agent = app.staff(Role::Agent, "Ana").await;
    let (s, _) = app.kb_import(&agent.token, "text/csv", examples).await;
    assert_eq!(s, 403);
}

/// `out_of_scope` is reserved for the tenant's examples of questions for a
/// person: known without examples, it takes examples and never an answer.
#[tokio::test]
async fn out_of_scope_examples_need_no_answer_and_refuse_one() {
    let app = spawn_app().await;
    let admin = &app.admin.token;
    let card = json!({"text": "Where is my card?", "intent": "card_arrival", "answer": "Within 5 working days."});
    let (s, body) = app.post("/api/v1/kb/examples", admin, card).await;
    assert_eq!((s, &body), (201, &json!({"added": true, "training": false})));
    // One intent and the reserved one make a model: answer it, or hand off.
    let (s, body) = app.post("/api/v1/kb/examples", admin, json!({"text": "Can I get a mortgage?", "intent": "out_of_scope"})).await;
    assert_eq!((s, &body), (201, &json!({"added": true, "training": true})));
    let (s, model) = app.get("/api/v1/kb/model", admin).await;
    assert_eq!((s, model["state"].as_str(), &model["intents"]), (200, Some("training"), &json!(["card_arrival", "out_of_scope"])));

    let answered = json!({"text": "Do you sell insurance?", "intent": "out_of_scope", "answer": "Ask a person."});
    let (s, body) = app.post("/api/v1/kb/examples", admin, answered).await;
    assert_eq!((s, code(&body)), (409, "reserved_intent"), "{body}");
    let (s, body) = app
        .kb_import(
            admin,
            "text/csv",
            "category,answer
card_arrival,In 5 days.
out_of_scope,Ask a person.
",
        )
        .await;
    assert_eq!((s, code(&body)), (400, "bad_request"), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("line 3") && m.contains("reserved")), "{body}");
    let (s, body) = app
        .kb_import(
            admin,
            "text/csv",
            "text,category
Do you sell insurance?,out_of_scope
",
        )
        .await;
    assert_eq!((s, &body), (200, &json!({"added": 1, "updated": 0, "unchanged": 0})));
    let (_, model) = app.get("/api/v1/kb/model", admin).await;
    assert_eq!(model["examples"].as_u64(), Some(3), "{model}");
}

/// Admins add and remove one example at a time; each change asks for a
/// new model, which `GET /api/v1/kb/model` shows as `training` (no worker
/// runs here, so it stays so).
#[tokio::test]
async fn one_example_at_a_time_asks_for_a_model_and_the_model_endpoint_says_so() {
    let app = spawn_app().await;
    let admin = &app.admin.token;
    let (s, body) = app.get("/api/v1/kb/model", admin).await;
    assert_eq!(
        (s, &body),
        (200, &json!({"examples": 0, "intents": [], "state": "untrained", "requested_at": null, "failure": null, "trained": null}))
    );
    let (s, body) = app.post("/api/v1/kb/train", admin, json!(null)).await;
    assert_eq!((s, code(&body)), (409, "no_examples"), "{body}");

    let example = |text: &str, intent: &str| json!({"text": text, "intent": intent});
    // An unknown intent needs its answer.
    let (s, body) = app.post("/api/v1/kb/examples", admin, example("Where is my card?", "card_arrival")).await;
    assert_eq!((s, code(&body)), (409, "unknown_intent"), "{body}");
    let with_answer = json!({"text": " Where is my card? ", "intent": "card_arrival", "answer": "Within 5 working days."});
    let (s, body) = app.post("/api/v1/kb/examples", admin, with_answer).await;
    assert_eq!((s, &body), (201, &json!({"added": true, "training": false})), "one intent is not enough to train");
    let (s, body) = app.post("/api/v1/kb/train", admin, json!(null)).await;
    assert_eq!((s, code(&body)), (409, "too_few_intents"), "{body}");
    let (s, body) =
        app.post("/api/v1/kb/examples", admin, json!({"text": "I lost my card", "intent": "lost_card", "answer": "Freeze it."})).await;
    assert_eq!((s, &body), (201, &json!({"added": true, "training": true})));
    let (s, body) = app.post("/api/v1/kb/examples", admin, example("Where is my card?", "card_arrival")).await;
    assert_eq!((s, &body), (201, &json!({"added": false, "training": false})), "a known example changes nothing");
    for (bad, status, expected) in [
        (example(" ", "card_arrival"), 409, "invalid_example"),
        (json!({"text": "x", "intent": "new_one", "answer": " "}), 409, "invalid_answer"),
        (json!({"text": "x"}), 400, "bad_request"),
    ] {
        let (s, body) = app.post("/api/v1/kb/examples", admin, bad.clone()).await;
        assert_eq!((s, code(&body)), (status, expected), "{bad}: {body}");
    }

    let (s, model) = app.get("/api/v1/kb/model", admin).await;
    assert_eq!(s, 200);
    assert_eq!((model["examples"].as_u64(), model["state"].as_str()), (Some(2), Some("training")), "{model}");
    assert_eq!(model["intents"], json!(["card_arrival", "lost_card"]));
    assert!(model["requested_at"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()), "{model}");
    assert_eq!(model["failure"], Value::Null);

    // The worker gives up on it (as crate ai-worker's retrain does): the model endpoint says why.
    let stream = StreamId::knowledge_base(&app.tenant);
    let kb = app.commands.load::<KnowledgeBase>(&stream).await.unwrap();
    let give_up = KnowledgeBaseCommand::FailIntentTraining {
        examples_fingerprint: kb.examples_fingerprint(),
        reason: "model: the encoder failed\n".into(),
    };
    app.commands.execute::<KnowledgeBase>(&stream, &give_up, &CommandContext::new(app.tenant.clone(), chrono::Utc::now())).await.unwrap();
    let (s, model) = app.get("/api/v1/kb/model", admin).await;
    assert_eq!((s, model["state"].as_str(), model["requested_at"].as_str()), (200, Some("failed"), None), "{model}");
    assert_eq!(model["failure"]["reason"], "model: the encoder failed", "{model}");
    assert!(model["failure"]["failed_at"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()), "{model}");
    // Asking again trains again.
    let (s, body) = app.post("/api/v1/kb/train", admin, json!(null)).await;
    assert_eq!((s, body["state"].as_str(), &body["failure"]), (202, Some("training"), &Value::Null), "{body}");

    let remove = |body: Value| app.call(reqwest::Method::DELETE, "/api/v1/kb/examples", Some(admin), Some(body));
    let (s, body) = remove(example("I lost my card", "lost_card")).await;
    assert_eq!(s, 204, "{body}");
    let (s, body) = remove(example("I lost my card", "lost_card")).await;
    assert_eq!((s, code(&body)), (409, "unknown_example"), "{body}");
    // One intent left: nothing can be trained, so nothing is training.
    let (_, model) = app.get("/api/v1/kb/model", admin).await;
    assert_eq!((model["examples"].as_u64(), model["state"].as_str()), (Some(1), Some("untrained")), "{model}");

    // Agents may not teach the bot, nor see its model; nor may a visitor with a free token.
    let agent = app.staff(Role::Agent, "Ana").await;
    let visitor = app.visitor().await;
    for token in [&agent.token, &visitor.token] {
        let (s, _) = app.post("/api/v1/kb/examples", token, example("Where is my card?", "card_arrival")).await;
        assert_eq!(s, 403);
        let (s, _) = app.post("/api/v1/kb/train", token, json!({})).await;
        assert_eq!(s, 403);
        let (s, _) = app.get("/api/v1/kb/model", token).await;
        assert_eq!(s, 403);
    }
}

/// Admins list the labelled examples (as removed ones leave them), filter
/// them by intent or by text, and page through them by intent then text.
#[tokio::test]
async fn admins_list_the_examples_by_intent_then_text_filter_and_page_them() {
    let app = spawn_app().await;
    let admin = &app.admin.token;
    let examples = format!(
        "text,category\nI lost my card,lost_card\nwhere is my card,card_arrival\nCard stolen,lost_card\n\
         my card has not come,card_arrival\nCan I get a mortgage?,{OUT_OF_SCOPE_INTENT}\nDo you sell insurance?,{OUT_OF_SCOPE_INTENT}\n"
    );
    let (s, body) = app.kb_import(admin, "text/csv", examples).await;
    assert_eq!((s, &body), (200, &json!({"added": 6, "updated": 0, "unchanged": 0})));
    let gone = json!({"text": "Card stolen", "intent": "lost_card"});
    let (s, body) = app.call(reqwest::Method::DELETE, "/api/v1/kb/examples", Some(admin), Some(gone)).await;
    assert_eq!(s, 204, "{body}");

    let app = &app;
    let list = |query: &str| {
        let path = format!("/api/v1/kb/examples{query}");
        async move { app.get(&path, admin).await }
    };
    let pairs = |body: &Value| -> Vec<(String, String)> {
        let items = body["items"].as_array().expect("items");
        items.iter().map(|e| (e["intent"].as_str().unwrap().to_owned(), e["text"].as_str().unwrap().to_owned())).collect()
    };
    let pair = |intent: &str, text: &str| (intent.to_owned(), text.to_owned());
    let intents = json!({"card_arrival": 2, "lost_card": 1, OUT_OF_SCOPE_INTENT: 2});

    let (s, body) = list("").await;
    assert_eq!((s, &body["total"], &body["intents"]), (200, &json!(5), &intents), "{body}");
    assert_eq!(
        pairs(&body),
        [
            pair("card_arrival", "my card has not come"),
            pair("card_arrival", "where is my card"),
            pair("lost_card", "I lost my card"),
            pair(OUT_OF_SCOPE_INTENT, "Can I get a mortgage?"),
            pair(OUT_OF_SCOPE_INTENT, "Do you sell insurance?"),
        ]
    );
    assert_eq!(body["items"][0], json!({"text": "my card has not come", "intent": "card_arrival"}), "only text and intent");

    // Filters narrow the items and the total, never the intents' counts.
    let (s, body) = list(&format!("?intent={OUT_OF_SCOPE_INTENT}")).await;
    assert_eq!((s, &body["total"], &body["intents"]), (200, &json!(2), &intents), "{body}");
    assert_eq!(pairs(&body), [pair(OUT_OF_SCOPE_INTENT, "Can I get a mortgage?"), pair(OUT_OF_SCOPE_INTENT, "Do you sell insurance?")]);
    let (_, body) = list("?q=CARD").await;
    assert_eq!(body["total"], 3, "{body}");
    assert_eq!(
        pairs(&body),
        [pair("card_arrival", "my card has not come"), pair("card_arrival", "where is my card"), pair("lost_card", "I lost my card")]
    );
    let (_, body) = list("?q=card&intent=lost_card").await;
    assert_eq!(pairs(&body), [pair("lost_card", "I lost my card")]);
    let (_, body) = list("?intent=lost").await;
    assert_eq!((&body["total"], pairs(&body)), (&json!(0), vec![]), "the intent is matched exactly: {body}");

    // Pages are stable slices of the same order; the total is the whole count.
    let (_, body) = list("?limit=2").await;
    assert_eq!(
        (&body["total"], pairs(&body)),
        (&json!(5), vec![pair("card_arrival", "my card has not come"), pair("card_arrival", "where is my card")])
    );
    let (_, body) = list("?limit=2&offset=2").await;
    assert_eq!(pairs(&body), [pair("lost_card", "I lost my card"), pair(OUT_OF_SCOPE_INTENT, "Can I get a mortgage?")]);
    let (_, body) = list("?limit=2&offset=4").await;
    assert_eq!(pairs(&body), [pair(OUT_OF_SCOPE_INTENT, "Do you sell insurance?")]);
    let (s, body) = list("?offset=5").await;
    assert_eq!((s, &body["total"], pairs(&body)), (200, &json!(5), vec![]), "{body}");
    let (s, _) = list(&format!("?limit=200&offset=100000&q={}", "a".repeat(200))).await;
    assert_eq!(s, 200, "the bounds themselves are allowed");

    let long = format!("?q={}", "a".repeat(201));
    for bad in ["?limit=0", "?limit=201", "?offset=100001", "?offset=-1", "?limit=ten", long.as_str(), "?sort=text"] {
        let (s, body) = list(bad).await;
        assert_eq!((s, code(&body)), (400, "bad_request"), "{bad}: {body}");
    }

    // Agents may not read them; each tenant has its own.
    let agent = app.staff(Role::Agent, "Ana").await;
    let (s, body) = app.get("/api/v1/kb/examples", &agent.token).await;
    assert_eq!((s, code(&body)), (403, "forbidden"), "{body}");
    let other = app.other_tenant_admin("globex").await;
    let (s, body) = app.get("/api/v1/kb/examples", &other.token).await;
    assert_eq!((s, &body), (200, &json!({"items": [], "total": 0, "intents": {}})));
}
