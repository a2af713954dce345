//! Out-of-scope figures on the held-out-intents protocol, for several seeds, fast:
//! every text is embedded once and cached, then each seed's split is trained and scored
//! on the cached embeddings with the product's own code (`learn::canonical_examples`,
//! `IntentModel::train_on_embeddings` with `TrainConfig::default`, `predict_many`).
//!
//! ```text
//! cargo run --release -p jamuna-ai-worker --example oos_holdout -- DATA.csv CACHE.json [OOS_INTENTS] [SEEDS]
//! ```
//!
//! DATA.csv is split with `eval::split_holdout` (10% of each intent's rows, plus every row
//! of OOS_INTENTS whole intents (default 8) relabelled `oos`). SEEDS is a comma-separated
//! list (default `7,8,9`). Prints, per seed and as the mean, the in-scope accuracy at 80%
//! OOS recall (`eval::in_scope_accuracy_at_oos_recall`, `jamuna eval`'s acc@oos80), the
//! in-scope accuracy and OOS recall at the model's own threshold, closed accuracy, the
//! AUROC of the confidence (in scope against out of scope) and the AUROC of each score
//! alone. The figures equal `jamuna eval`'s on the same split up to the embedding's
//! batching. Environment overrides of `TrainConfig::default`, for experiments:
//! `OOS_ROUNDS` (calibration rounds), `OOS_UNKNOWN_FRACTION` (share of intents hidden per
//! round), `OOS_K` (nearest neighbours).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use jamuna_ai_worker::{Embedder, IntentModel, TrainConfig, eval, learn};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: oos_holdout DATA.csv CACHE.json [OOS_INTENTS] [SEEDS]";
    let data = PathBuf::from(args.next().ok_or(usage)?);
    let cache = PathBuf::from(args.next().ok_or(usage)?);
    let oos_intents: usize = args.next().map_or(Ok(8), |s| s.parse())?;
    let seeds: Vec<u64> = args.next().unwrap_or_else(|| "7,8,9".into()).split(',').map(str::parse).collect::<Result<_, _>>()?;

    let examples = eval::read_examples(&data)?;
    let mut texts: Vec<String> = examples.iter().map(|e| e.text.clone()).collect();
    texts.sort();
    texts.dedup();
    let vectors: Vec<Vec<f32>> = if cache.exists() {
        serde_json::from_slice(&std::fs::read(&cache)?)?
    } else {
        let model_dir = std::env::var_os("JAMUNA_MODEL_DIR").map_or_else(|| PathBuf::from("models/all-MiniLM-L6-v2"), PathBuf::from);
        let embedder = Embedder::load(&model_dir)?;
        let t = Instant::now();
        let mut v = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(256) {
            v.extend(embedder.embed(chunk)?);
        }
        println!("embedded {} texts in {:.1}s", v.len(), t.elapsed().as_secs_f64());
        std::fs::write(&cache, serde_json::to_vec(&v)?)?;
        v
    };
    let embedding: HashMap<&str, &Vec<f32>> = texts.iter().map(String::as_str).zip(&vectors).collect();

    // Overrides for experiments: OOS_ROUNDS (calibration rounds), OOS_UNKNOWN_FRACTION
    // (share of intents hidden per round), OOS_K (nearest neighbours).
    let mut config = TrainConfig::default();
    if let Some(r) = std::env::var("OOS_ROUNDS").ok().and_then(|v| v.parse().ok()) {
        config.calibration_rounds = r;
    }
    if let Some(f) = std::env::var("OOS_UNKNOWN_FRACTION").ok().and_then(|v| v.parse().ok()) {
        config.unknown_intent_fraction = f;
    }
    if let Some(k) = std::env::var("OOS_K").ok().and_then(|v| v.parse().ok()) {
        config.knn_neighbours = k;
    }
    let mut sums = [0.0f64; 7];
    for &seed in &seeds {
        let split = eval::split_holdout(&examples, 0.1, oos_intents, "oos", seed);
        let train = learn::canonical_examples(&split.train);
        let xs: Vec<Vec<f32>> = train.iter().map(|e| embedding[e.text.as_str()].clone()).collect();
        let ys: Vec<&str> = train.iter().map(|e| e.intent.as_str()).collect();
        let t = Instant::now();
        let model = IntentModel::train_on_embeddings(&xs, &ys, &config)?;
        let train_s = t.elapsed().as_secs_f64();
        let qs: Vec<Vec<f32>> = split.test.iter().map(|e| embedding[e.text.as_str()].clone()).collect();
        let preds = model.predict_many(&qs)?;
        let (mut n_in, mut right, mut closed, mut n_oos, mut caught) = (0usize, 0usize, 0usize, 0usize, 0usize);
        let (mut conf_in, mut conf_oos) = (Vec::new(), Vec::new());
        let mut outcomes: Vec<eval::Outcome> = Vec::new();
        for (e, p) in split.test.iter().zip(&preds) {
            if e.intent == "oos" {
                n_oos += 1;
                caught += usize::from(p.intent.is_none());
                conf_oos.push(p.confidence);
                outcomes.push((p.confidence, None));
            } else {
                n_in += 1;
                right += usize::from(p.intent.as_deref() == Some(e.intent.as_str()));
                closed += usize::from(p.top.first().map(|t| t.0.as_str()) == Some(e.intent.as_str()));
                conf_in.push(p.confidence);
                outcomes.push((p.confidence, Some(p.top.first().map(|t| t.0.as_str()) == Some(e.intent.as_str()))));
            }
        }
        let figures = [
            right as f64 / n_in as f64,
            caught as f64 / n_oos.max(1) as f64,
            closed as f64 / n_in as f64,
            auroc(&conf_in, &conf_oos),
            fpr_at_95(&conf_in, &conf_oos),
            train_s,
            eval::in_scope_accuracy_at_oos_recall(&outcomes, 0.80).unwrap_or(0.0),
        ];
        let c = model.calibration();
        println!(
            "seed {seed}: acc@oos80 {:.4}  in-scope {:.4}  oos recall {:.4}  closed {:.4}  AUROC {:.4}  FPR95 {:.4}  train {:.1}s  (threshold {:.3}; calibration in-scope {:.4} oos {:.4})",
            figures[6],
            figures[0],
            figures[1],
            figures[2],
            figures[3],
            figures[4],
            figures[5],
            c.threshold,
            c.in_scope_accuracy,
            c.oos_recall
        );
        // How well each score alone separates in-scope from out-of-scope messages.
        let scores = model.scores_many(&qs)?;
        let is_oos: Vec<bool> = split.test.iter().map(|e| e.intent == "oos").collect();
        let single = |f: &dyn Fn(&jamuna_ai_worker::intent::Scores) -> f32| {
            let (i, o): (Vec<_>, Vec<_>) = scores.iter().zip(&is_oos).partition(|(_, o)| !**o);
            let v = |x: Vec<(&jamuna_ai_worker::intent::Scores, &bool)>| x.into_iter().map(|(s, _)| f(s)).collect::<Vec<f32>>();
            auroc(&v(i), &v(o))
        };
        println!(
            "        AUROC of each score alone: probability {:.4}  nearest {:.4}  mean of k nearest {:.4}  -Mahalanobis {:.4}",
            single(&|s| s.best_probability),
            single(&|s| s.nearest),
            single(&|s| s.knn_mean),
            single(&|s| -s.mahalanobis.unwrap_or(0.0))
        );
        sums.iter_mut().zip(figures).for_each(|(s, f)| *s += f);
    }
    let n = seeds.len() as f64;
    println!(
        "mean: acc@oos80 {:.4}  in-scope {:.4}  oos recall {:.4}  closed {:.4}  AUROC {:.4}  FPR95 {:.4}  train {:.1}s",
        sums[6] / n,
        sums[0] / n,
        sums[1] / n,
        sums[2] / n,
        sums[3] / n,
        sums[4] / n,
        sums[5] / n
    );
    Ok(())
}

/// Probability that an in-scope message scores above an out-of-scope one (ties count half).
fn auroc(pos: &[f32], neg: &[f32]) -> f64 {
    let mut all: Vec<(f32, bool)> = pos.iter().map(|&s| (s, true)).chain(neg.iter().map(|&s| (s, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0.0f64, 0usize);
    while i < all.len() {
        let j = (i..all.len()).find(|&j| all[j].0 != all[i].0).unwrap_or(all.len());
        let mid = (i + j + 1) as f64 / 2.0;
        rank_sum += mid * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (p, n) = (pos.len() as f64, neg.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n).max(1.0)
}

/// Share of out-of-scope messages kept at the threshold that keeps 95% of in-scope ones.
fn fpr_at_95(pos: &[f32], neg: &[f32]) -> f64 {
    let mut p = pos.to_vec();
    p.sort_by(f32::total_cmp);
    let t = p[((p.len() as f64) * 0.05).floor() as usize];
    neg.iter().filter(|&&s| s >= t).count() as f64 / neg.len().max(1) as f64
}
