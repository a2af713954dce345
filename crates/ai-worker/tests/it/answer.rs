//! The answerer with the real model: intents from labelled examples, follow-ups read in
//! the conversation's context, one clarifying question before a handoff, and models
//! trained live from knowledge-base events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jamuna_ai_worker::AsyncEmbedder;
use jamuna_ai_worker::answer::{AnswerConfig, Answerer, Decision};
use jamuna_ai_worker::dialogue::{CLARIFY, CLARIFY_INTENT};
use jamuna_ai_worker::eval::read_examples;
use jamuna_ai_worker::learn::{self, ModelCache};
use jamuna_domain::conversation::HandoffReason;
use jamuna_domain::knowledge_base::{KnowledgeBaseEvent, LabelledExample, examples_fingerprint};
use jamuna_domain::{ArticleId, ConversationId, TenantId, UserId};
use jamuna_projections::sessions::{MemorySessions, SessionContext};

use crate::{embedder, fixture, shared_embedder};

/// A small bank's knowledge base: each article answers one thing.
const ARTICLES: &[(&str, &str, &str)] = &[
    (
        "international-transfers",
        "Sending money abroad",
        "To send money to another country, open Payments > International, enter the recipient's IBAN and choose the currency. International transfers take 1 to 3 working days to arrive.",
    ),
    ("card-delivery", "Card delivery", "New debit cards are sent by post and arrive within 5 working days of your order."),
    ("change-pin", "Changing your PIN", "You can change your PIN at any cash machine that offers PIN services."),
    ("top-up", "Topping up", "Top up your account by bank transfer or with a debit card in the app."),
];

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

async fn answerer_with_articles() -> Answerer {
    let vectors = crate::vectors::vectors().await;
    let answerer = Answerer::new(AsyncEmbedder::new(shared_embedder()), vectors.clone(), AnswerConfig::default()).await.unwrap();
    for (id, title, body) in ARTICLES {
        vectors.write_article(&tenant(), &ArticleId::parse(*id).unwrap(), title, body, 1).await.unwrap();
    }
    answerer
}

fn cited(d: &Decision) -> Option<&str> {
    match d {
        Decision::Answer { sources, .. } => sources.first().map(|s| s.article_id.as_str()),
        Decision::Handoff { .. } => None,
    }
}

#[tokio::test]
async fn a_follow_up_that_alone_would_be_handed_off_is_answered_in_context() {
    let answerer = answerer_with_articles().await.with_sessions(Arc::new(MemorySessions::new()));
    let follow_up = "and how long does that take?";
    // Alone, the follow-up says nothing the bot can answer from.
    let (alone, _) = answerer.decide_in_context(&tenant(), follow_up, &SessionContext::default()).await.unwrap();
    assert!(matches!(alone, Decision::Handoff { reason: HandoffReason::LowConfidence, .. }), "{alone:?}");

    let conversation = ConversationId::parse("c1").unwrap();
    let customer = UserId::parse("u1").unwrap();
    let first = answerer.decide_in_session(&tenant(), &conversation, &customer, "How do I send money to another country?").await.unwrap();
    assert_eq!(cited(&first), Some("international-transfers"), "{first:?}");
    let second = answerer.decide_in_session(&tenant(), &conversation, &customer, follow_up).await.unwrap();
    assert_eq!(cited(&second), Some("international-transfers"), "{second:?}");

    // Another conversation has no such context.
    let other = ConversationId::parse("c2").unwrap();
    let d = answerer.decide_in_session(&tenant(), &other, &customer, follow_up).await.unwrap();
    assert!(matches!(d, Decision::Handoff { .. }), "{d:?}");
}

/// The worker reads a wave's follow-ups after their conversation's previous
/// question in the same batch; decided with that reading, a follow-up gets the
/// decision it gets read alone.
#[tokio::test]
async fn a_follow_up_read_in_its_batch_is_decided_as_when_read_alone() {
    let answerer = answerer_with_articles().await.with_sessions(Arc::new(MemorySessions::new()));
    let customer = UserId::parse("u1").unwrap();
    let first = "How do I send money to another country?";
    let follow_up = "and how long does that take?";
    let alone = ConversationId::parse("alone").unwrap();
    let batched = ConversationId::parse("batched").unwrap();
    for c in [&alone, &batched] {
        answerer.decide_in_session(&tenant(), c, &customer, first).await.unwrap();
    }
    let expected = answerer.decide_in_session(&tenant(), &alone, &customer, follow_up).await.unwrap();

    let reads = answerer
        .read_in_context(vec![
            (tenant(), Some(batched.clone()), follow_up.to_string()),
            (tenant(), Some(ConversationId::parse("fresh").unwrap()), follow_up.to_string()),
            (tenant(), Some(batched.clone()), "How do I change the PIN of my debit card?".to_string()),
        ])
        .await
        .unwrap();
    let (previous, _) = reads[0].in_context.as_ref().expect("the follow-up is read after the question before it");
    assert_eq!(previous, first);
    assert!(reads[1].in_context.is_none(), "a conversation without a previous question");
    assert!(reads[2].in_context.is_none(), "a question that is not a follow-up");

    let got = answerer.decide_in_session_embedded(&tenant(), &batched, &customer, follow_up, Some(&reads[0])).await.unwrap();
    assert_eq!(cited(&got), Some("international-transfers"), "{got:?}");
    let (Decision::Answer { confidence: a, why: why_got, .. }, Decision::Answer { confidence: b, why: why_expected, .. }) =
        (&got, &expected)
    else {
        panic!("{got:?} / {expected:?}")
    };
    assert_eq!((cited(&got), why_got.basis), (cited(&expected), why_expected.basis));
    assert!((a - b).abs() < 1e-3, "{a} vs {b}");
}

fn fixture_examples() -> Vec<LabelledExample> {
    read_examples(&fixture("intents_train.csv")).unwrap().into_iter().map(|e| LabelledExample { text: e.text, intent: e.intent }).collect()
}

#[tokio::test]
async fn a_recognised_intent_answers_with_its_answer_and_an_unclear_message_gets_one_question() {
    let answerer = answerer_with_articles().await.with_sessions(Arc::new(MemorySessions::new()));
    let examples = fixture_examples();
    let trained = learn::train(embedder(), &learn::canonical(&examples), &mut |_, _| {}).unwrap();
    answerer.intents().install(&tenant(), 1, Arc::new(trained.model));
    let answer = "Your card is on its way: cards arrive within 5 working days.";
    answerer.learn(&tenant(), &KnowledgeBaseEvent::IntentAnswerSet { intent: "card_arrival".into(), answer: answer.into() });

    let conversation = ConversationId::parse("c1").unwrap();
    let customer = UserId::parse("u1").unwrap();
    let d = answerer.decide_in_session(&tenant(), &conversation, &customer, "my new card still hasn't been delivered").await.unwrap();
    let Decision::Answer { text, intent, confidence, sources, .. } = &d else { panic!("{d:?}") };
    assert_eq!((text.as_str(), intent.as_deref()), (answer, Some("card_arrival")));
    assert!(*confidence > 0.0 && sources.is_empty());

    // An intent without an answer: retrieval answers, the intent is recorded.
    let d = answerer.decide_in_session(&tenant(), &conversation, &customer, "How do I change my PIN number?").await.unwrap();
    let Decision::Answer { intent, sources, .. } = &d else { panic!("{d:?}") };
    assert_eq!((intent.as_deref(), sources.first().map(|s| s.article_id.as_str())), (Some("change_pin"), Some("change-pin")), "{d:?}");

    // Out of scope: one clarifying question, then a handoff.
    let lost = ConversationId::parse("c2").unwrap();
    let d = answerer.decide_in_session(&tenant(), &lost, &customer, "what's a good pizza topping?").await.unwrap();
    assert!(matches!(&d, Decision::Answer { text, intent: Some(i), .. } if text == CLARIFY && i == CLARIFY_INTENT), "{d:?}");
    let d = answerer.decide_in_session(&tenant(), &lost, &customer, "I mean with pineapple or without").await.unwrap();
    assert!(matches!(d, Decision::Handoff { reason: HandoffReason::RepeatedFailure, .. }), "{d:?}");

    // A request for a human is still a handoff, whatever the model says.
    let d = answerer.decide_in_session(&tenant(), &conversation, &customer, "let me talk to a human agent about my card").await.unwrap();
    assert!(matches!(d, Decision::Handoff { reason: HandoffReason::CustomerAsked, .. }), "{d:?}");
}

#[tokio::test]
async fn the_worker_side_trains_the_model_an_event_names_and_caches_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path());
    let answerer = answerer_with_articles().await.with_model_cache(cache.clone());
    let examples = fixture_examples();
    answerer.learn(&tenant(), &KnowledgeBaseEvent::ExamplesAdded { examples: examples.clone() });
    assert_eq!(answerer.intent_model_version(&tenant()), 0);
    let fingerprint = examples_fingerprint(&examples);
    let trained = jamuna_domain::knowledge_base::TrainedModel {
        examples_fingerprint: fingerprint.clone(),
        examples: examples.len(),
        intents: 6,
        threshold: 0.5,
        held_out_accuracy: 1.0,
        in_scope_accuracy: 1.0,
        oos_recall: 1.0,
        seconds: 1.0,
        trainer: learn::TRAINER.into(),
        retention: None,
        operating_points: vec![],
    };
    answerer.learn(&tenant(), &KnowledgeBaseEvent::IntentModelTrained { version: 1, trained });
    let start = Instant::now();
    while answerer.intent_model_version(&tenant()) != 1 {
        assert!(start.elapsed() < Duration::from_secs(300), "the model was not trained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The model is cached for the next start, and answers.
    let cached = cache.load(&tenant(), 1, &fingerprint).expect("the trained model is cached");
    assert_eq!(cached.intents().len(), 6);
    let d = answerer.decide(&tenant(), "my new card still hasn't been delivered").await.unwrap();
    assert!(matches!(&d, Decision::Answer { intent: Some(i), .. } if i == "card_arrival"), "{d:?}");

    // The tenant's handoff retention sets the threshold: the curve's for it, now and
    // for every model installed later.
    let intents = answerer.intents();
    assert_eq!(intents.threshold(&tenant()), Some(cached.threshold()));
    let (cautious, keen) = (cached.threshold_for(0.80).unwrap(), cached.threshold_for(0.995).unwrap());
    assert!(cautious > keen, "0.80: {cautious}, 0.995: {keen}");
    intents.set_retention(&tenant(), 0.80);
    assert_eq!(intents.threshold(&tenant()), Some(cautious));
    intents.set_retention(&tenant(), 0.995);
    assert_eq!(intents.threshold(&tenant()), Some(keen));
    intents.install(&tenant(), 2, Arc::new(cached.clone()));
    assert_eq!((intents.model_version(&tenant()), intents.threshold(&tenant())), (2, Some(keen)));
}
