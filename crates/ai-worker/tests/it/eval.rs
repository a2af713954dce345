use std::collections::BTreeSet;

use jamuna_ai_worker::eval::{self, EvalOptions, FIGURES, ThresholdSource};

use crate::{embedder, fixture};

fn options(val: bool, seeds: usize) -> EvalOptions {
    EvalOptions { oos_label: Some("oos".to_owned()), val: val.then(|| fixture("intents_val.csv")), seeds, ..EvalOptions::default() }
}

#[test]
fn eval_reports_the_out_of_scope_measures_over_seeds() {
    let runs = eval::run_with(embedder(), &fixture("intents_train.csv"), &fixture("intents_test.csv"), &options(false, 2)).unwrap();
    println!("{runs}\n{}", runs.summary_json());
    assert_eq!(runs.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [42, 43]);
    let first = &runs.runs[0];
    assert_eq!(first.threshold_from, ThresholdSource::Training);
    assert_eq!(first.threshold, f64::from(first.calibration.threshold));
    // The fixture's three off-topic questions lie far from every banking example.
    assert!(first.auroc.is_some_and(|a| a >= 0.9), "{first}");
    assert!(first.fpr_at_95_in_scope_recall.is_some_and(|f| f <= 1.0 / 3.0), "{first}");
    assert!(first.in_scope_accuracy_at_80_oos_recall.is_some_and(|a| a >= 0.75), "{first}");

    let json = runs.summary_json();
    let keys: BTreeSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = BTreeSet::from(["n", "seeds", "threshold_from", "retention", "seconds", "spread"]);
    expected.extend(FIGURES);
    assert_eq!(keys, expected);
    let mean = (runs.runs[0].closed_accuracy + runs.runs[1].closed_accuracy) / 2.0;
    assert!((json["closed_accuracy"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((json["retention"].as_f64().unwrap() - 0.95).abs() < 1e-6);
}

#[test]
fn eval_applies_the_threshold_for_the_retention_as_the_live_bot_does() {
    let at = |retention: f32| {
        let options = EvalOptions { retention, ..options(false, 1) };
        eval::run_with(embedder(), &fixture("intents_train.csv"), &fixture("intents_test.csv"), &options).unwrap().runs.remove(0)
    };
    let (cautious, keen) = (at(0.80), at(0.995));
    let curve = &cautious.calibration.curve;
    // The threshold is the curve's for the retention, the one `IntentModel::with_retention` sets.
    assert_eq!(cautious.threshold, f64::from(jamuna_ai_worker::intent::threshold_for_retention(curve, 0.80)));
    assert_eq!(keen.threshold, f64::from(jamuna_ai_worker::intent::threshold_for_retention(curve, 0.995)));
    assert!(cautious.threshold > keen.threshold, "0.80: {}, 0.995: {}", cautious.threshold, keen.threshold);
    assert!(cautious.in_scope_retention <= keen.in_scope_retention);
    assert!((cautious.retention - 0.80).abs() < 1e-6 && (keen.retention - 0.995).abs() < 1e-6);
    // The held-out point behind it keeps at least the retention asked for.
    let kept = jamuna_ai_worker::intent::point_for_retention(curve, 0.80).and_then(|p| p.in_scope_retention).unwrap();
    assert!(kept >= 0.80, "{kept}");
}

#[test]
fn training_with_one_seed_is_deterministic_and_the_seed_is_the_products() {
    // `run` (one seed) measures the model `kb train` would train: the same one every time.
    let a = eval::run(embedder(), &fixture("intents_train.csv"), &fixture("intents_test.csv"), Some("oos")).unwrap();
    let b = eval::run_with(embedder(), &fixture("intents_train.csv"), &fixture("intents_test.csv"), &options(false, 1)).unwrap();
    let b = &b.runs[0];
    assert_eq!(a.seed, jamuna_ai_worker::TrainConfig::default().seed);
    assert_eq!((&a.calibration, a.threshold, a.auroc, &a.per_intent), (&b.calibration, b.threshold, b.auroc, &b.per_intent));
}

#[test]
fn eval_takes_the_threshold_from_a_validation_file() {
    let runs = eval::run_with(embedder(), &fixture("intents_train.csv"), &fixture("intents_test.csv"), &options(true, 1)).unwrap();
    let r = &runs.runs[0];
    println!("{r}");
    assert_eq!(r.threshold_from, ThresholdSource::Validation);
    assert_eq!(runs.summary_json()["threshold_from"], "validation");
    // The validation file's off-topic questions are handed off, its banking ones answered.
    assert!(r.oos_recall.is_some_and(|x| x >= 2.0 / 3.0), "{r}");
    assert!(r.in_scope_accuracy >= 0.75, "{r}");

    // A validation row must name a known intent, like a test row.
    let dir = tempfile::tempdir().unwrap();
    let val = dir.path().join("val.csv");
    std::fs::write(&val, "text,category\nhello,greeting\n").unwrap();
    let bad = EvalOptions { val: Some(val.clone()), ..options(false, 1) };
    let err = eval::run_with(embedder(), &fixture("intents_train.csv"), &fixture("intents_test.csv"), &bad).unwrap_err();
    assert_eq!(err.to_string(), format!("{}:2: intent `greeting` is not in the training set (nor the out-of-scope label)", val.display()));
}

#[test]
fn training_rows_labelled_out_of_scope_teach_the_model_what_to_hand_off() {
    // The tenant's examples of questions for a person (weather, sport, cooking), labelled
    // with the eval's out-of-scope label: trained as the reserved `out_of_scope` intent.
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.csv");
    let mut text = std::fs::read_to_string(fixture("intents_train.csv")).unwrap();
    for q in [
        "What will the weather be like this weekend?",
        "Is it going to rain on Friday?",
        "How hot will it be in the afternoon?",
        "Which team won the cricket match?",
        "What was the score of the game yesterday?",
        "Who is top of the football league?",
        "How do I bake bread at home?",
        "Give me a recipe for a lemon cake",
        "How long do I boil an egg?",
    ] {
        text.push_str(&format!("{q},oos\n"));
    }
    std::fs::write(&train, text).unwrap();
    let taught = eval::run_with(embedder(), &train, &fixture("intents_test.csv"), &options(false, 1)).unwrap().runs.remove(0);
    println!("{taught}");
    assert!(taught.calibration.oos_rows > 0);
    assert!(taught.per_intent.iter().all(|i| i.intent != jamuna_ai_worker::intent::OUT_OF_SCOPE_INTENT), "never scored as an intent");
    // The fixture's three off-topic test questions are handed off, and the banking ones
    // still answered right.
    assert_eq!(taught.oos_recall, Some(1.0), "{taught}");
    assert!(taught.in_scope_accuracy >= 0.8, "{taught}");
}
