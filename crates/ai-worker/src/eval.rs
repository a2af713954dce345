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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::embed::Embedder;
use crate::intent::{Calibration, Example, IntentError};

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
    /// Wall time of the whole run: reading, training, embedding and scoring the test set.
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
    /// The headline figures, with exactly the keys
    /// `n, accuracy, macro_f1, in_scope_accuracy, oos_recall, oos_precision, seconds`.
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "in_scope_accuracy": self.in_scope_accuracy,
            "oos_recall": self.oos_recall,
            "oos_precision": self.oos_precision,
            "seconds": self.seconds,
        })
    }
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
        writeln!(
            f,
            "{:>width$}  {:>9.4}  (temperature {:.3}; calibration: in-scope acc {:.4}, oos recall {:.4}, ECE {:.4})",
            "threshold",
            self.calibration.threshold,
            self.calibration.temperature,
            self.calibration.in_scope_accuracy,
            self.calibration.oos_recall,
            self.calibration.expected_calibration_error
        )?;
        write!(f, "{:>width$}  {:.1}s total, {:.1}s training on {} rows", "time", self.seconds, self.train_seconds, self.train_rows)
    }
}

/// Trains on `train_csv` exactly as the product does ([`crate::TrainConfig::default`]) and
/// scores `test_csv`. Test rows labelled `oos_label` are out of scope.
pub fn run(embedder: &Embedder, train_csv: &Path, test_csv: &Path, oos_label: Option<&str>) -> Result<EvalReport, EvalError> {
    let start = Instant::now();
    let train = read_examples(train_csv)?;
    let test = read_labelled(test_csv)?;
    let known: BTreeSet<&str> = train.iter().map(|e| e.intent.as_str()).collect();
    for (line, e) in &test {
        if Some(e.intent.as_str()) != oos_label && !known.contains(e.intent.as_str()) {
            return Err(EvalError::UnknownIntent { path: test_csv.to_owned(), line: *line, intent: e.intent.clone() });
        }
    }

    // Exactly as `kb train` and the live worker train a tenant's model.
    let model = crate::learn::train(embedder, &train, &mut |_, _| {})?.model;
    let train_seconds = start.elapsed().as_secs_f64();
    let texts: Vec<&str> = test.iter().map(|(_, e)| e.text.as_str()).collect();
    let predictions = model.classify(embedder, &texts)?;
    let best: Vec<Option<&str>> = predictions.iter().map(|p| p.top.first().map(|t| t.0.as_str())).collect();
    let predicted: Vec<Option<String>> = predictions.iter().map(|p| p.intent.clone()).collect();
    let truth: Vec<Option<&str>> = test.iter().map(|(_, e)| Some(e.intent.as_str()).filter(|i| Some(*i) != oos_label)).collect();

    let mut report = score(&truth, &predicted, oos_label.unwrap_or("handoff"));
    let in_scope: Vec<(&Option<&str>, &Option<&str>)> = truth.iter().zip(&best).filter(|(t, _)| t.is_some()).collect();
    report.closed_accuracy = in_scope.iter().filter(|(t, b)| t == b).count() as f64 / in_scope.len().max(1) as f64;
    report.seconds = start.elapsed().as_secs_f64();
    report.train_seconds = train_seconds;
    report.train_rows = train.len();
    report.calibration = model.calibration().clone();
    Ok(report)
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
        assert_eq!(keys, BTreeSet::from(["n", "accuracy", "macro_f1", "in_scope_accuracy", "oos_recall", "oos_precision", "seconds"]));
        assert!(r.to_string().contains("oos recall"));
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
