use jamuna_ai_worker::eval::{self, read_examples};
use jamuna_ai_worker::{IntentModel, TrainConfig};

use crate::{embedder, fixture};

#[test]
fn trains_on_examples_and_hands_off_what_it_was_not_taught() {
    let train = read_examples(&fixture("intents_train.csv")).unwrap();
    let model = IntentModel::train(embedder(), &train, &TrainConfig::default()).unwrap();
    assert_eq!(model.intents().len(), 6);

    let p = model.classify(embedder(), &["my new card still hasn't been delivered", "what's a good pizza topping?"]).unwrap();
    assert_eq!(p[0].intent.as_deref(), Some("card_arrival"), "{:?}", p[0]);
    assert_eq!(p[1].intent, None, "{:?} (threshold {})", p[1], model.threshold());

    // A tenant's model is stored as JSON and behaves the same when loaded.
    let json = serde_json::to_string(&model).unwrap();
    let loaded: IntentModel = serde_json::from_str(&json).unwrap();
    let again = loaded.classify(embedder(), &["my new card still hasn't been delivered"]).unwrap();
    assert_eq!(again[0], p[0]);
}

#[test]
fn eval_scores_the_fixture() {
    let report = eval::run(embedder(), &fixture("intents_train.csv"), &fixture("intents_test.csv"), Some("oos")).unwrap();
    println!("{report}\n{}", report.summary_json());
    assert_eq!(report.n, 15);
    assert_eq!(report.per_intent.len(), 7);
    assert!(report.in_scope_accuracy >= 0.75, "{report}");
    assert!(report.oos_recall.is_some_and(|r| r >= 2.0 / 3.0), "{report}");
    assert!(report.accuracy >= 0.7, "{report}");
}

#[test]
fn eval_rejects_a_test_intent_missing_from_training() {
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("test.csv");
    std::fs::write(&test, "text,category\nhello,card_arrival\nhi,greeting\n").unwrap();
    let err = eval::run(embedder(), &fixture("intents_train.csv"), &test, Some("oos")).unwrap_err();
    assert_eq!(err.to_string(), format!("{}:3: intent `greeting` is not in the training set (nor the out-of-scope label)", test.display()));
}

/// The worker reads a batch's messages together: each tenant's model predicts all of
/// its messages in one product (`LiveIntents::predict_all`). The result is what
/// predicting each message alone gives, in order, and `None` for a tenant with no model.
#[test]
fn a_batch_is_predicted_as_each_message_alone() {
    use jamuna_domain::TenantId;
    let train = read_examples(&fixture("intents_train.csv")).unwrap();
    let model = std::sync::Arc::new(IntentModel::train(embedder(), &train, &TrainConfig::default()).unwrap());
    let live = jamuna_ai_worker::live::LiveIntents::new(jamuna_ai_worker::AsyncEmbedder::new(crate::shared_embedder()));
    let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
    live.install(&acme, 1, model);
    let texts = ["my new card still hasn't been delivered", "what's a good pizza topping?", "I want my money back", "hello"];
    let embeddings = embedder().embed(&texts).unwrap();
    let reads: Vec<(TenantId, Vec<f32>)> =
        embeddings.iter().enumerate().map(|(i, e)| (if i == 2 { globex.clone() } else { acme.clone() }, e.clone())).collect();
    let batch = live.predict_all(&reads);
    assert_eq!(batch.len(), reads.len());
    for ((tenant, embedding), got) in reads.iter().zip(&batch) {
        let alone = live.predict(tenant, embedding);
        match (got, alone) {
            (None, None) => assert_eq!(tenant, &globex),
            (Some((p, answer)), Some((q, answer_alone))) => {
                assert_eq!(p.intent, q.intent);
                assert_eq!(p.top.iter().map(|t| &t.0).collect::<Vec<_>>(), q.top.iter().map(|t| &t.0).collect::<Vec<_>>());
                assert!((p.confidence - q.confidence).abs() < 1e-4, "{} vs {}", p.confidence, q.confidence);
                assert_eq!(answer, &answer_alone);
            }
            (got, alone) => panic!("batch {got:?} but alone {alone:?}"),
        }
    }
    assert!(batch[0].as_ref().is_some_and(|(p, _)| p.intent.as_deref() == Some("card_arrival")), "{:?}", batch[0]);
}
