//! Offline evaluation of intent classification: train as the product does, score a test set.
//!
//! Data sets are CSV files with a header naming a `text` column and an intent column
//! (`category`, `intent` or `label`), like BANKING77. Rows of the test set whose intent is
//! the *out-of-scope label* (for example `oos`) are messages the bot should hand off; a
//! prediction counts as right when it names the row's intent, or hands off an
//! out-of-scope row. Any other test intent must exist in the training set.
//!
//! [`split_holdout`] makes an honest test set from one labelled file: a stratified share
//! of each intent's rows, plus every row of a few whole intents, relabelled out of scope
//! and removed from training.
//!
//! ## What is measured
//!
//! The model is trained by [`crate::learn::train_with`], the function `kb train` and the
//! live worker use (with the product's [`TrainConfig`]; only `--seeds` changes its
//! seed), and every test row goes through [`IntentModel::predict_many`], which gives the
//! same prediction as the live bot's [`IntentModel::predict`]: the intent it answers (or a
//! handoff when the calibrated confidence is below the threshold), and that confidence.
//! Besides the figures at the model's threshold, the out-of-scope measures use the
//! confidence as the score of being in scope, over all thresholds:
//!
//! - [`auroc`]: the chance that an in-scope row has a higher confidence than an
//!   out-of-scope row (ties count one half);
//! - [`fpr_at_in_scope_recall`] at 0.95: the share of out-of-scope rows still answered at
//!   the threshold that answers 95% of the in-scope rows;
//! - [`in_scope_accuracy_at_oos_recall`] at 0.80: the share of in-scope rows answered
//!   with the right intent at the threshold that hands off 80% of the out-of-scope rows
//!   (a handoff of an in-scope row counts as wrong).
//!
//! A row whose confidence equals such a threshold falls on the side that makes the
//! figure worse: it is answered in FPR95 and handed off in the accuracy at 80% recall.
//!
//! Training is deterministic (the examples are put in one order and the head and the
//! calibration draw from a fixed seed), so one run measures one model; `--seeds N`
//! trains with N seeds (the product's first) and reports the mean and the spread.
//!
//! The threshold is the live bot's: the one that keeps `--retention` (0.95 by default,
//! the tenants' default `handoff_retention`) of training's held-out in-scope messages,
//! applied with [`IntentModel::with_retention`] as the worker applies a tenant's
//! setting. `--val FILE` instead picks the threshold that keeps that share of the
//! validation file's in-scope rows ([`choose_threshold`]), the same rule on other rows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::embed::Embedder;
use crate::intent::{
    Calibration, DEFAULT_RETENTION, Example, IntentError, IntentModel, OUT_OF_SCOPE_INTENT, Prediction, TrainConfig, operating_points,
    threshold_for_retention,
};

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Parse { path: PathBuf, line: u64, message: String },
    #[error("{path}: the header needs a `text` column and a `category`, `intent` or `label` column")]
    MissingColumn { path: PathBuf },
    #[error("{path}: no rows")]
    NoRows { path: PathBuf },
    #[error("{path}:{line}: intent `{intent}` is not in the training set (nor the out-of-scope label)")]
    UnknownIntent { path: PathBuf, line: u64, intent: String },
    #[error(transparent)]
    Intent(#[from] IntentError),
}

/// Precision, recall and F1 of one intent (or of the out-of-scope class).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentReport {
    pub intent: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Test rows of this intent.
    pub support: usize,
}

/// The outcome of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Test rows.
    pub n: usize,
    /// Share of test rows predicted right (a handoff of an in-scope row is wrong).
    pub accuracy: f64,
    /// Mean F1 over the classes with test rows (the out-of-scope class included).
    pub macro_f1: f64,
    /// Accuracy over in-scope rows only.
    pub in_scope_accuracy: f64,
    /// Accuracy over in-scope rows had the model never handed off (its best intent).
    pub closed_accuracy: f64,
    /// Share of out-of-scope rows handed off; `None` without out-of-scope rows.
    pub oos_recall: Option<f64>,
    /// Share of handoffs that were out-of-scope rows; `None` without out-of-scope rows.
    pub oos_precision: Option<f64>,
    /// Share of in-scope rows answered (right or wrong) at the threshold.
    pub in_scope_retention: f64,
    /// In-scope vs out-of-scope separation by the confidence ([`auroc`]).
    pub auroc: Option<f64>,
    /// Share of out-of-scope rows answered when 95% of in-scope rows are ([`fpr_at_in_scope_recall`]).
    pub fpr_at_95_in_scope_recall: Option<f64>,
    /// In-scope accuracy when 80% of out-of-scope rows are handed off ([`in_scope_accuracy_at_oos_recall`]).
    pub in_scope_accuracy_at_80_oos_recall: Option<f64>,
    /// The handoff threshold applied to the test set.
    pub threshold: f64,
    /// The in-scope retention that threshold was chosen to keep (`--retention`).
    pub retention: f64,
    /// Where that threshold came from.
    pub threshold_from: ThresholdSource,
    /// The training seed ([`TrainConfig::seed`]).
    pub seed: u64,
    /// Wall time of the run: training, and scoring the validation and test sets.
    pub seconds: f64,
    /// Wall time of training (embedding the training set included).
    pub train_seconds: f64,
    pub train_rows: usize,
    /// What training's own calibration measured, and the threshold it chose.
    pub calibration: Calibration,
    /// One line per class with test rows, sorted by name.
    pub per_intent: Vec<IntentReport>,
}

impl EvalReport {
    /// The headline figures: `n`, `seed`, `threshold_from`, `seconds` and the [`FIGURES`].
    pub fn summary_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "n": self.n,
            "seed": self.seed,
            "threshold_from": self.threshold_from,
            "retention": self.retention,
            "seconds": self.seconds,
        });
        for (key, value) in self.figures() {
            json[key] = serde_json::json!(value);
        }
        json
    }

    /// The [`FIGURES`] of this run, in that order.
    pub fn figures(&self) -> [(&'static str, Option<f64>); 11] {
        [
            ("accuracy", Some(self.accuracy)),
            ("macro_f1", Some(self.macro_f1)),
            ("closed_accuracy", Some(self.closed_accuracy)),
            ("in_scope_accuracy", Some(self.in_scope_accuracy)),
            ("in_scope_retention", Some(self.in_scope_retention)),
            ("oos_recall", self.oos_recall),
            ("oos_precision", self.oos_precision),
            ("auroc", self.auroc),
            ("fpr_at_95_in_scope_recall", self.fpr_at_95_in_scope_recall),
            ("in_scope_accuracy_at_80_oos_recall", self.in_scope_accuracy_at_80_oos_recall),
            ("threshold", Some(self.threshold)),
        ]
    }
}

/// The names of the figures a run reports ([`EvalReport::figures`]).
pub const FIGURES: [&str; 11] = [
    "accuracy",
    "macro_f1",
    "closed_accuracy",
    "in_scope_accuracy",
    "in_scope_retention",
    "oos_recall",
    "oos_precision",
    "auroc",
    "fpr_at_95_in_scope_recall",
    "in_scope_accuracy_at_80_oos_recall",
    "threshold",
];

/// Where the threshold applied to the test set came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// Training's own calibration on the training examples (what the product uses):
    /// the threshold for the retention on its held-out curve.
    #[default]
    Training,
    /// [`choose_threshold`] on the `--val` file.
    Validation,
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.per_intent.iter().map(|r| r.intent.len()).max().unwrap_or(6).max(12);
        writeln!(f, "{:>width$}  precision     recall         f1    support", "intent")?;
        for r in &self.per_intent {
            writeln!(f, "{:>width$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9}", r.intent, r.precision, r.recall, r.f1, r.support)?;
        }
        writeln!(f)?;
        writeln!(f, "{:>width$}  {:>9.4}  ({} rows)", "accuracy", self.accuracy, self.n)?;
        writeln!(f, "{:>width$}  {:>9.4}", "macro f1", self.macro_f1)?;
        writeln!(f, "{:>width$}  {:>9.4}", "in-scope acc", self.in_scope_accuracy)?;
        writeln!(f, "{:>width$}  {:>9.4}  (in scope, never handing off)", "closed acc", self.closed_accuracy)?;
        let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
        writeln!(f, "{:>width$}  {:>9}", "oos recall", opt(self.oos_recall))?;
        writeln!(f, "{:>width$}  {:>9}", "oos precision", opt(self.oos_precision))?;
        writeln!(f, "{:>width$}  {:>9.4}  (in-scope rows answered)", "retention", self.in_scope_retention)?;
        writeln!(f, "{:>width$}  {:>9}  (confidence: in scope vs out of scope)", "auroc", opt(self.auroc))?;
        writeln!(f, "{:>width$}  {:>9}  (oos answered at 95% in-scope retention)", "fpr95", opt(self.fpr_at_95_in_scope_recall))?;
        writeln!(f, "{:>width$}  {:>9}  (in-scope acc at 80% oos recall)", "acc@oos80", opt(self.in_scope_accuracy_at_80_oos_recall))?;
        let from = match self.threshold_from {
            ThresholdSource::Training => "training's calibration",
            ThresholdSource::Validation => "the validation file",
        };
        writeln!(
            f,
            "{:>width$}  {:>9.4}  (keeping {:.1}% of in-scope on {from}; seed {})",
            "threshold",
            self.threshold,
            self.retention * 100.0,
            self.seed
        )?;
        writeln!(
            f,
            "{:>width$}  {:>9.4}  (temperature {:.3}; calibration: in-scope acc {:.4}, oos recall {:.4}, ECE {:.4})",
            "calibration",
            self.calibration.threshold,
            self.calibration.temperature,
            self.calibration.in_scope_accuracy,
            self.calibration.oos_recall,
            self.calibration.expected_calibration_error
        )?;
        write!(f, "{:>width$}  {:.1}s this run, {:.1}s training on {} rows", "time", self.seconds, self.train_seconds, self.train_rows)
    }
}

/// How [`run_with`] evaluates.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Test (and validation) rows with this intent are out of scope.
    pub oos_label: Option<String>,
    /// A labelled file to choose the threshold on ([`choose_threshold`]) instead of
    /// training's calibration.
    pub val: Option<PathBuf>,
    /// The in-scope retention the threshold keeps (the live bot's `handoff_retention`).
    pub retention: f32,
    /// Trainings, with seeds `TrainConfig::default().seed + 0, 1, …` (at least one).
    pub seeds: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { oos_label: None, val: None, seeds: 1, retention: DEFAULT_RETENTION }
    }
}

/// The runs of [`run_with`], one per seed, the product's seed first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalRuns {
    pub runs: Vec<EvalReport>,
    /// Wall time of everything: reading, embedding the test and validation sets, every run.
    pub seconds: f64,
}

/// The mean and spread of one figure over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    /// Sample standard deviation (`None` for one run).
    pub sd: Option<f64>,
    pub min: f64,
    pub max: f64,
}

/// The mean, sample standard deviation, least and greatest of `values`; `None` when empty.
pub fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.len() > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Spread { mean, sd, min, max })
}

impl EvalRuns {
    /// Each of the [`FIGURES`] over the runs; `None` where a run has no value (no
    /// out-of-scope rows).
    pub fn spreads(&self) -> Vec<(&'static str, Option<Spread>)> {
        let per_run: Vec<_> = self.runs.iter().map(EvalReport::figures).collect();
        (0..FIGURES.len())
            .map(|i| {
                let values: Option<Vec<f64>> = per_run.iter().map(|f| f[i].1).collect();
                (FIGURES[i], values.and_then(|v| spread(&v)))
            })
            .collect()
    }

    /// The JSON last line of `jamuna eval`: `n`, `seeds`, `threshold_from`, `retention`, `seconds`,
    /// every one of the [`FIGURES`] as its mean over the seeds (`null` without
    /// out-of-scope rows), and `spread`: per figure `{mean, sd, min, max}`.
    pub fn summary_json(&self) -> serde_json::Value {
        let first = self.runs.first();
        let mut json = serde_json::json!({
            "n": first.map_or(0, |r| r.n),
            "seeds": self.runs.iter().map(|r| r.seed).collect::<Vec<_>>(),
            "threshold_from": first.map(|r| r.threshold_from),
            "retention": first.map(|r| r.retention),
            "seconds": self.seconds,
        });
        let mut spreads = serde_json::Map::new();
        for (key, s) in self.spreads() {
            json[key] = serde_json::json!(s.map(|s| s.mean));
            spreads.insert(key.to_owned(), serde_json::json!(s));
        }
        json["spread"] = serde_json::Value::Object(spreads);
        json
    }
}

impl fmt::Display for EvalRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.runs.first() else {
            return write!(f, "no runs");
        };
        writeln!(f, "seed {} (the product's):", first.seed)?;
        write!(f, "{first}")?;
        if self.runs.len() > 1 {
            let seeds: Vec<String> = self.runs.iter().map(|r| r.seed.to_string()).collect();
            writeln!(f, "\n\nover {} seeds ({}):", self.runs.len(), seeds.join(", "))?;
            writeln!(f, "{:>34}  {:>8}  {:>8}  {:>8}  {:>8}", "figure", "mean", "sd", "min", "max")?;
            for (key, s) in self.spreads() {
                match s {
                    Some(s) => writeln!(f, "{key:>34}  {:>8.4}  {:>8.4}  {:>8.4}  {:>8.4}", s.mean, s.sd.unwrap_or(0.0), s.min, s.max)?,
                    None => writeln!(f, "{key:>34}  {:>8}", "n/a")?,
                }
            }
        }
        write!(f, "\n{:.1}s in all", self.seconds)
    }
}

/// Trains on `train_csv` exactly as the product does ([`crate::learn::train`]) and
/// scores `test_csv`. Test rows labelled `oos_label` are out of scope.
pub fn run(embedder: &Embedder, train_csv: &Path, test_csv: &Path, oos_label: Option<&str>) -> Result<EvalReport, EvalError> {
    let options = EvalOptions { oos_label: oos_label.map(str::to_owned), ..EvalOptions::default() };
    let mut runs = run_with(embedder, train_csv, test_csv, &options)?;
    Ok(runs.runs.remove(0))
}

/// [`run`] with options: a validation file for the threshold, several seeds.
pub fn run_with(embedder: &Embedder, train_csv: &Path, test_csv: &Path, options: &EvalOptions) -> Result<EvalRuns, EvalError> {
    let start = Instant::now();
    let oos_label = options.oos_label.as_deref();
    // Training rows labelled out of scope are the tenant's examples of questions for a
    // person: the reserved intent, as the dashboard and the API record them.
    let train: Vec<Example> = read_examples(train_csv)?
        .into_iter()
        .map(|e| if Some(e.intent.as_str()) == oos_label { Example { intent: OUT_OF_SCOPE_INTENT.to_owned(), ..e } } else { e })
        .collect();
    let known: BTreeSet<&str> = train.iter().map(|e| e.intent.as_str()).collect();
    let read_checked = |path: &Path| -> Result<Vec<(u64, Example)>, EvalError> {
        let rows = read_labelled(path)?;
        for (line, e) in &rows {
            if Some(e.intent.as_str()) != oos_label && !known.contains(e.intent.as_str()) {
                return Err(EvalError::UnknownIntent { path: path.to_owned(), line: *line, intent: e.intent.clone() });
            }
        }
        Ok(rows)
    };
    let test = read_checked(test_csv)?;
    let val = options.val.as_deref().map(read_checked).transpose()?;
    let truth_of = |rows: &[(u64, Example)]| -> Vec<Option<String>> {
        rows.iter().map(|(_, e)| Some(e.intent.clone()).filter(|i| Some(i.as_str()) != oos_label)).collect()
    };
    // Embedded once: every seed's model scores the same vectors ([`IntentModel::classify`]
    // is this embedding followed by `predict_many`).
    let embed = |rows: &[(u64, Example)]| -> Result<Vec<Vec<f32>>, IntentError> {
        Ok(embedder.embed(&rows.iter().map(|(_, e)| e.text.as_str()).collect::<Vec<_>>())?)
    };
    let test_truth = truth_of(&test);
    let test_embeddings = embed(&test)?;
    let val = match &val {
        Some(rows) => Some((truth_of(rows), embed(rows)?)),
        None => None,
    };

    let product = TrainConfig::default();
    let mut runs = Vec::with_capacity(options.seeds.max(1));
    for i in 0..options.seeds.max(1) {
        let run_start = Instant::now();
        let config = TrainConfig { seed: product.seed.wrapping_add(i as u64), ..product.clone() };
        // Exactly as `kb train` and the live worker train a tenant's model, and as the
        // worker applies the tenant's handoff retention.
        let mut model = crate::learn::train_with(embedder, &train, &config, &mut |_, _| {})?.model.with_retention(options.retention);
        let train_seconds = run_start.elapsed().as_secs_f64();
        let mut threshold_from = ThresholdSource::Training;
        if let Some((truth, embeddings)) = &val {
            let rows = outcomes(truth, &model.predict_many(embeddings)?);
            model = model.with_threshold(choose_threshold(&rows, options.retention));
            threshold_from = ThresholdSource::Validation;
        }
        let mut report = evaluate(&model, &test_truth, &model.predict_many(&test_embeddings)?, oos_label);
        report.threshold_from = threshold_from;
        // As written (0.95, not the f32's 0.949999988…).
        report.retention = (f64::from(options.retention) * 1e6).round() / 1e6;
        report.seed = config.seed;
        report.train_seconds = train_seconds;
        report.train_rows = train.len();
        report.seconds = run_start.elapsed().as_secs_f64();
        runs.push(report);
    }
    Ok(EvalRuns { runs, seconds: start.elapsed().as_secs_f64() })
}

/// Every figure of one model on one test set, from its predictions.
fn evaluate(model: &IntentModel, truth: &[Option<String>], predictions: &[Prediction], oos_label: Option<&str>) -> EvalReport {
    let truth: Vec<Option<&str>> = truth.iter().map(Option::as_deref).collect();
    let predicted: Vec<Option<String>> = predictions.iter().map(|p| p.intent.clone()).collect();
    let mut report = score(&truth, &predicted, oos_label.unwrap_or("handoff"));
    let rows = outcomes(&truth, predictions);
    let in_scope: Vec<Option<bool>> = rows.iter().map(|r| r.1).filter(Option::is_some).collect();
    report.closed_accuracy = in_scope.iter().filter(|r| **r == Some(true)).count() as f64 / in_scope.len().max(1) as f64;
    let answered = truth.iter().zip(&predicted).filter(|(t, p)| t.is_some() && p.is_some()).count();
    report.in_scope_retention = answered as f64 / in_scope.len().max(1) as f64;
    report.auroc = auroc(&rows);
    report.fpr_at_95_in_scope_recall = fpr_at_in_scope_recall(&rows, 0.95);
    report.in_scope_accuracy_at_80_oos_recall = in_scope_accuracy_at_oos_recall(&rows, 0.80);
    report.threshold = f64::from(model.threshold());
    report.calibration = model.calibration().clone();
    report
}

/// One scored row: the model's confidence, and `Some(whether its best intent is right)`
/// for an in-scope row, `None` for an out-of-scope one.
pub type Outcome = (f32, Option<bool>);

/// The [`Outcome`] of each prediction; `truth` is `None` for an out-of-scope row.
fn outcomes<S: AsRef<str>>(truth: &[Option<S>], predictions: &[Prediction]) -> Vec<Outcome> {
    truth
        .iter()
        .zip(predictions)
        .map(|(t, p)| {
            let best = p.top.first().map(|b| b.0.as_str());
            // Read as out of scope: handed off at every threshold.
            (if p.out_of_scope { -1.0 } else { p.confidence }, t.as_ref().map(|t| Some(t.as_ref()) == best))
        })
        .collect()
}

/// The area under the ROC curve of the confidence as a score of being in scope: the
/// chance that a random in-scope row scores higher than a random out-of-scope row, ties
/// counting one half (the Mann–Whitney statistic with mid-ranks). `None` unless both
/// kinds of row are present.
pub fn auroc(rows: &[Outcome]) -> Option<f64> {
    let mut sorted: Vec<(f32, bool)> = rows.iter().map(|r| (r.0, r.1.is_some())).collect();
    let n_in = sorted.iter().filter(|r| r.1).count();
    let n_oos = sorted.len() - n_in;
    if n_in == 0 || n_oos == 0 {
        return None;
    }
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the in-scope rows' ranks (1-based), tied rows sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let j = i + sorted[i..].iter().take_while(|r| r.0.total_cmp(&sorted[i].0).is_eq()).count();
        let mid_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mid_rank * sorted[i..j].iter().filter(|r| r.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (n_in * (n_in + 1)) as f64 / 2.0;
    Some(u / (n_in as f64 * n_oos as f64))
}

/// `ceil(share × n)`, at least 1 (for `n > 0`), without float noise pushing an exact
/// product up (0.95 × 20 is 19, not 20).
fn at_least(share: f64, n: usize) -> usize {
    ((share * n as f64 - 1e-9).ceil() as usize).clamp(1, n.max(1))
}

/// The share of out-of-scope rows answered at the threshold that answers `recall` of the
/// in-scope rows: the threshold is the `⌈recall·n⌉`-th highest in-scope confidence, and a
/// row is answered when its confidence is at least the threshold (so an out-of-scope row
/// tied with it counts as answered). `None` unless both kinds of row are present.
pub fn fpr_at_in_scope_recall(rows: &[Outcome], recall: f64) -> Option<f64> {
    let mut in_scope: Vec<f32> = rows.iter().filter(|r| r.1.is_some()).map(|r| r.0).collect();
    let oos: Vec<f32> = rows.iter().filter(|r| r.1.is_none()).map(|r| r.0).collect();
    if in_scope.is_empty() || oos.is_empty() {
        return None;
    }
    in_scope.sort_by(|a, b| b.total_cmp(a));
    let threshold = in_scope[at_least(recall, in_scope.len()) - 1];
    Some(oos.iter().filter(|c| **c >= threshold).count() as f64 / oos.len() as f64)
}

/// In-scope accuracy at the threshold that hands off `recall` of the out-of-scope rows:
/// the threshold is the `⌈recall·n⌉`-th lowest out-of-scope confidence and a row is
/// handed off when its confidence is at most the threshold (so an in-scope row tied
/// with it is handed off). The accuracy is over all in-scope rows: right means answered
/// with the row's intent; a handoff or a wrong intent is wrong. `None` unless both
/// kinds of row are present.
pub fn in_scope_accuracy_at_oos_recall(rows: &[Outcome], recall: f64) -> Option<f64> {
    let mut oos: Vec<f32> = rows.iter().filter(|r| r.1.is_none()).map(|r| r.0).collect();
    let in_scope: Vec<(f32, bool)> = rows.iter().filter_map(|r| r.1.map(|right| (r.0, right))).collect();
    if in_scope.is_empty() || oos.is_empty() {
        return None;
    }
    oos.sort_by(|a, b| a.total_cmp(b));
    let threshold = oos[at_least(recall, oos.len()) - 1];
    Some(in_scope.iter().filter(|(c, right)| *right && *c > threshold).count() as f64 / in_scope.len() as f64)
}

/// The threshold `--val` applies, chosen on the validation rows as training chooses it
/// on its held-out messages: the highest that keeps `retention` of the in-scope rows
/// ([`operating_points`], [`threshold_for_retention`]; a row is answered when its
/// confidence is at least the threshold). 0 (never hand off) without in-scope rows.
pub fn choose_threshold(rows: &[Outcome], retention: f32) -> f32 {
    let in_scope: Vec<(f32, bool)> = rows.iter().filter_map(|r| r.1.map(|right| (r.0, right))).collect();
    let oos: Vec<f32> = rows.iter().filter(|r| r.1.is_none()).map(|r| r.0).collect();
    threshold_for_retention(&operating_points(&in_scope, &oos), retention)
}

/// Scores predictions; `None` is out of scope (a handoff), named `oos_name` in the report.
fn score(truth: &[Option<&str>], predicted: &[Option<String>], oos_name: &str) -> EvalReport {
    let n = truth.len();
    let name = |o: Option<&str>| o.unwrap_or(oos_name).to_owned();
    let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new(); // (tp, predicted, support)
    let mut right = 0usize;
    let (mut in_n, mut in_right, mut oos_n, mut oos_caught, mut handoffs) = (0, 0, 0, 0, 0);
    for (t, p) in truth.iter().zip(predicted) {
        let p = p.as_deref();
        let ok = *t == p;
        right += usize::from(ok);
        counts.entry(name(*t)).or_default().2 += 1;
        let e = counts.entry(name(p)).or_default();
        e.1 += 1;
        if ok {
            e.0 += 1;
        }
        match t {
            Some(_) => {
                in_n += 1;
                in_right += usize::from(ok);
            }
            None => {
                oos_n += 1;
                oos_caught += usize::from(ok);
            }
        }
        handoffs += usize::from(p.is_none());
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_intent: Vec<IntentReport> = counts
        .into_iter()
        .filter(|(_, c)| c.2 > 0)
        .map(|(intent, (tp, pred, support))| {
            let precision = ratio(tp, pred);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            IntentReport { intent, precision, recall, f1, support }
        })
        .collect();
    let macro_f1 = per_intent.iter().map(|r| r.f1).sum::<f64>() / per_intent.len().max(1) as f64;
    EvalReport {
        n,
        accuracy: ratio(right, n),
        macro_f1,
        in_scope_accuracy: ratio(in_right, in_n),
        closed_accuracy: 0.0,
        oos_recall: (oos_n > 0).then(|| ratio(oos_caught, oos_n)),
        oos_precision: (oos_n > 0).then(|| ratio(oos_caught, handoffs)),
        in_scope_retention: 0.0,
        auroc: None,
        fpr_at_95_in_scope_recall: None,
        in_scope_accuracy_at_80_oos_recall: None,
        threshold: 0.0,
        retention: 0.0,
        threshold_from: ThresholdSource::Training,
        seed: 0,
        seconds: 0.0,
        train_seconds: 0.0,
        train_rows: 0,
        calibration: Calibration::default(),
        per_intent,
    }
}

/// Reads labelled examples from a CSV file with a header (`text` and
/// `category`/`intent`/`label` columns). Errors name the file and line.
pub fn read_examples(path: &Path) -> Result<Vec<Example>, EvalError> {
    Ok(read_labelled(path)?.into_iter().map(|(_, e)| e).collect())
}

/// Like [`read_examples`], keeping each row's line number.
fn read_labelled(path: &Path) -> Result<Vec<(u64, Example)>, EvalError> {
    let file = std::fs::File::open(path).map_err(|source| EvalError::Read { path: path.to_owned(), source })?;
    parse_examples(file, path)
}

fn parse_examples<R: std::io::Read>(reader: R, path: &Path) -> Result<Vec<(u64, Example)>, EvalError> {
    let parse_err = |line: u64, message: String| EvalError::Parse { path: path.to_owned(), line, message };
    let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
    let headers = csv.headers().map_err(|e| parse_err(1, e.to_string()))?.clone();
    let column = |names: &[&str]| headers.iter().position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)));
    let (Some(text_col), Some(intent_col)) = (column(&["text"]), column(&["category", "intent", "label"])) else {
        return Err(EvalError::MissingColumn { path: path.to_owned() });
    };
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            parse_err(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize, what: &str| {
            record
                .get(i)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| parse_err(line, format!("empty {what}")))
        };
        rows.push((line, Example { text: field(text_col, "text")?, intent: field(intent_col, "intent")? }));
    }
    if rows.is_empty() {
        return Err(EvalError::NoRows { path: path.to_owned() });
    }
    Ok(rows)
}

/// Writes examples as a `text,category` CSV.
pub fn write_examples(path: &Path, examples: &[Example]) -> Result<(), EvalError> {
    let write_err = |e: csv::Error| EvalError::Write { path: path.to_owned(), message: e.to_string() };
    let mut w = csv::Writer::from_path(path).map_err(write_err)?;
    w.write_record(["text", "category"]).map_err(write_err)?;
    for e in examples {
        w.write_record([&e.text, &e.intent]).map_err(write_err)?;
    }
    w.flush().map_err(|e| EvalError::Write { path: path.to_owned(), message: e.to_string() })
}

/// A train/test split made by [`split_holdout`].
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Vec<Example>,
    pub test: Vec<Example>,
    /// The intents held out whole (their test rows are labelled out of scope).
    pub oos_intents: Vec<String>,
}

/// Splits labelled examples for an honest evaluation: `oos_intents` whole intents (chosen
/// at random) go to the test set relabelled `oos_label`; of every other intent, a
/// `test_fraction` share of its rows (rounded, at least one when it has two or more) goes
/// to the test set. Deterministic for a given `seed`.
pub fn split_holdout(examples: &[Example], test_fraction: f64, oos_intents: usize, oos_label: &str, seed: u64) -> Split {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut by_intent: BTreeMap<&str, Vec<&Example>> = BTreeMap::new();
    for e in examples {
        by_intent.entry(e.intent.as_str()).or_default().push(e);
    }
    let mut intents: Vec<&str> = by_intent.keys().copied().collect();
    intents.shuffle(&mut rng);
    let hidden: BTreeSet<&str> = intents.iter().take(oos_intents).copied().collect();

    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (intent, mut rows) in by_intent {
        if hidden.contains(intent) {
            test.extend(rows.into_iter().map(|e| Example { text: e.text.clone(), intent: oos_label.to_owned() }));
            continue;
        }
        rows.shuffle(&mut rng);
        let n_test = if rows.len() >= 2 { ((rows.len() as f64 * test_fraction).round() as usize).clamp(1, rows.len() - 1) } else { 0 };
        test.extend(rows[..n_test].iter().map(|e| (*e).clone()));
        train.extend(rows[n_test..].iter().map(|e| (*e).clone()));
    }
    Split { train, test, oos_intents: hidden.into_iter().map(str::to_owned).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, intent: &str) -> Example {
        Example { text: text.to_owned(), intent: intent.to_owned() }
    }

    #[test]
    fn parses_quoted_multiline_csv_with_line_numbers() {
        let data = "text,category\n\"hello, there\",greet\n\"two\nlines\",multi\nbye,leave\n";
        let rows = parse_examples(data.as_bytes(), Path::new("t.csv")).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], (2, ex("hello, there", "greet")));
        assert_eq!(rows[1].1.text, "two\nlines");
        assert_eq!(rows[2].0, 5);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let data = "text,category\nok,a\nmissing intent,\n";
        let err = parse_examples(data.as_bytes(), Path::new("t.csv")).unwrap_err();
        assert_eq!(err.to_string(), "t.csv:3: empty intent");

        let ragged = "text,category\nok,a\nx,y,z\n";
        let err = parse_examples(ragged.as_bytes(), Path::new("t.csv")).unwrap_err();
        assert!(err.to_string().starts_with("t.csv:3:"), "{err}");

        let no_header = "words,tag\nok,a\n";
        assert!(matches!(parse_examples(no_header.as_bytes(), Path::new("t.csv")), Err(EvalError::MissingColumn { .. })));
        assert!(matches!(parse_examples("text,intent\n".as_bytes(), Path::new("t.csv")), Err(EvalError::NoRows { .. })));
    }

    #[test]
    fn scores_count_a_handoff_of_an_in_scope_row_as_wrong() {
        let truth = [Some("a"), Some("a"), Some("b"), None, None];
        let predicted = [Some("a".to_owned()), None, Some("b".to_owned()), None, Some("a".to_owned())];
        let r = score(&truth, &predicted, "oos");
        assert_eq!(r.n, 5);
        assert!((r.accuracy - 3.0 / 5.0).abs() < 1e-9);
        assert!((r.in_scope_accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.oos_recall, Some(0.5));
        assert_eq!(r.oos_precision, Some(0.5));
        let a = r.per_intent.iter().find(|x| x.intent == "a").unwrap();
        assert_eq!((a.support, a.precision, a.recall), (2, 0.5, 0.5));
        let names: Vec<&str> = r.per_intent.iter().map(|x| x.intent.as_str()).collect();
        assert_eq!(names, ["a", "b", "oos"]);
        let json = r.summary_json();
        let keys: BTreeSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = BTreeSet::from(["n", "seed", "threshold_from", "retention", "seconds"]);
        expected.extend(FIGURES);
        assert_eq!(keys, expected);
        assert_eq!(json["threshold_from"], "training");
        assert!(r.to_string().contains("oos recall"));
    }

    fn rows(in_scope: &[(f32, bool)], oos: &[f32]) -> Vec<Outcome> {
        in_scope.iter().map(|&(c, right)| (c, Some(right))).chain(oos.iter().map(|&c| (c, None))).collect()
    }

    #[test]
    fn auroc_counts_ties_as_one_half() {
        // Pairs (in, oos): 0.9 beats both, 0.5 ties 0.5 and beats 0.1, 0.3 loses to 0.5
        // and beats 0.1: (2 + 1.5 + 1) / 6.
        let r = rows(&[(0.9, true), (0.5, false), (0.3, true)], &[0.5, 0.1]);
        assert!((auroc(&r).unwrap() - 0.75).abs() < 1e-12);
        assert_eq!(auroc(&rows(&[(0.5, true), (0.5, true)], &[0.5])), Some(0.5));
        assert_eq!(auroc(&rows(&[(0.9, true), (0.8, false)], &[0.1, 0.2])), Some(1.0));
        assert_eq!(auroc(&rows(&[(0.1, true)], &[0.9, 0.8])), Some(0.0));
    }

    #[test]
    fn out_of_scope_measures_are_none_without_both_kinds_of_row() {
        let only_in = rows(&[(0.9, true), (0.2, false)], &[]);
        assert_eq!(auroc(&only_in), None);
        assert_eq!(fpr_at_in_scope_recall(&only_in, 0.95), None);
        assert_eq!(in_scope_accuracy_at_oos_recall(&only_in, 0.8), None);
        let only_oos = rows(&[], &[0.3]);
        assert_eq!(auroc(&only_oos), None);
        assert_eq!(fpr_at_in_scope_recall(&only_oos, 0.95), None);
        assert_eq!(in_scope_accuracy_at_oos_recall(&only_oos, 0.8), None);
        assert_eq!(auroc(&[]), None);
    }

    #[test]
    fn fpr_at_95_recall_answers_an_oos_row_tied_with_the_threshold() {
        // 20 in-scope rows 0.05, 0.10, … 1.00: answering 19 of them puts the threshold at
        // 0.10; out-of-scope 0.10 (tied) and 0.5 are answered, 0.05 and 0.0 are not.
        let in_scope: Vec<(f32, bool)> = (1..=20).map(|i| (i as f32 / 20.0, true)).collect();
        let r = rows(&in_scope, &[0.1, 0.05, 0.5, 0.0]);
        assert_eq!(fpr_at_in_scope_recall(&r, 0.95), Some(0.5));
        // ⌈0.95 × 3⌉ = 3: every in-scope row answered, threshold 0.7.
        let r = rows(&[(0.9, true), (0.8, true), (0.7, true)], &[0.7, 0.6]);
        assert_eq!(fpr_at_in_scope_recall(&r, 0.95), Some(0.5));
    }

    #[test]
    fn accuracy_at_80_oos_recall_counts_handoffs_and_wrong_intents_as_wrong() {
        // ⌈0.8 × 5⌉ = 4 out-of-scope rows handed off: threshold 0.4. In scope: 0.95 right
        // (answered), 0.4 right but tied (handed off), 0.6 answered wrong, 0.5 right.
        let r = rows(&[(0.95, true), (0.4, true), (0.6, false), (0.5, true)], &[0.1, 0.2, 0.3, 0.4, 0.9]);
        assert_eq!(in_scope_accuracy_at_oos_recall(&r, 0.8), Some(0.5));
    }

    #[test]
    fn validation_threshold_keeps_the_retention_of_the_in_scope_rows() {
        // 20 in-scope rows 0.05, 0.10, … 1.00: keeping 19 puts the threshold at 0.10,
        // keeping 17 (85%) at 0.20; out-of-scope rows do not move it.
        let in_scope: Vec<(f32, bool)> = (1..=20).map(|i| (i as f32 / 20.0, i % 2 == 0)).collect();
        assert_eq!(choose_threshold(&rows(&in_scope, &[0.3, 0.95]), 0.95), 0.1);
        assert_eq!(choose_threshold(&rows(&in_scope, &[]), 0.95), 0.1);
        assert_eq!(choose_threshold(&rows(&in_scope, &[0.01]), 0.85), 0.2);
        assert_eq!(choose_threshold(&rows(&[], &[0.5]), 0.95), 0.0);
        assert_eq!(choose_threshold(&[], 0.95), 0.0);
    }

    #[test]
    fn spread_is_mean_sample_sd_min_and_max() {
        let s = spread(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.mean, s.sd, s.min, s.max), (2.0, Some(1.0), 1.0, 3.0));
        assert_eq!(spread(&[0.5]).unwrap().sd, None);
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn runs_report_the_mean_of_each_figure_and_null_without_oos_rows() {
        let mut a = score(&[Some("a"), None], &[Some("a".to_owned()), None], "oos");
        let mut b = score(&[Some("a"), None], &[None, None], "oos");
        (a.seed, b.seed, a.auroc, b.auroc) = (42, 43, Some(1.0), Some(0.5));
        let runs = EvalRuns { runs: vec![a, b], seconds: 1.0 };
        let json = runs.summary_json();
        assert_eq!(json["seeds"], serde_json::json!([42, 43]));
        assert_eq!(json["in_scope_accuracy"], 0.5);
        assert_eq!(json["auroc"], 0.75);
        assert_eq!(json["spread"]["auroc"]["min"], 0.5);
        // score() leaves FPR95 unset (no confidences): null, like every OOS figure without OOS rows.
        assert!(json["fpr_at_95_in_scope_recall"].is_null());
        assert!(runs.to_string().contains("over 2 seeds (42, 43)"));
    }

    #[test]
    fn oos_fields_are_null_without_oos_rows() {
        let r = score(&[Some("a")], &[None], "oos");
        assert_eq!(r.accuracy, 0.0);
        assert!(r.summary_json()["oos_recall"].is_null());
        assert!(r.summary_json()["oos_precision"].is_null());
    }

    #[test]
    fn holdout_is_stratified_and_hides_whole_intents() {
        let mut all = Vec::new();
        for i in 0..6 {
            for k in 0..10 {
                all.push(ex(&format!("{i}-{k}"), &format!("intent{i}")));
            }
        }
        let s = split_holdout(&all, 0.2, 2, "oos", 3);
        assert_eq!(s.oos_intents.len(), 2);
        assert_eq!(s.train.len() + s.test.len(), all.len());
        assert!(s.train.iter().all(|e| !s.oos_intents.contains(&e.intent)));
        assert_eq!(s.test.iter().filter(|e| e.intent == "oos").count(), 20);
        for i in 0..6 {
            let name = format!("intent{i}");
            if !s.oos_intents.contains(&name) {
                assert_eq!(s.test.iter().filter(|e| e.intent == name).count(), 2);
            }
        }
        assert_eq!(split_holdout(&all, 0.2, 2, "oos", 3), s);
    }

    #[test]
    fn examples_round_trip_through_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        let rows = vec![ex("a, \"quoted\"\ntext", "one"), ex("b", "two")];
        write_examples(&path, &rows).unwrap();
        assert_eq!(read_examples(&path).unwrap(), rows);
    }
}
