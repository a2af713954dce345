//! Calibration: what the model's confidence means and when the bot hands off.
//!
//! Several rounds each hide a few whole intents and part of the other intents' examples,
//! fit a head on the rest and score the held-out messages; from those scores come the
//! softmax temperature, the logistic confidence model (fitted by [`super::solve`]), the
//! trade-off curve ([`OperatingPoint`]s) and the threshold that keeps a target share of
//! the answerable messages: the *in-scope retention* ([`threshold_for_retention`]).
//! Whatever the bot does not keep it hands off; the curve says how many unknown
//! questions that catches and how many kept answers are right.
//!
//! The confidence weighs four [`Scores`] of a message: the blend's probability of its
//! best intent, the similarity to the nearest example, the mean similarity to the
//! `knn_neighbours` nearest (Sun et al., ICML 2022) and the Mahalanobis distance to the
//! nearest intent ([`super::distance`]). Each round fits its own distance on the examples
//! it keeps, so the hidden intents are as unknown to it as to the head.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::distance::Mahalanobis;
use super::solve::fit_logistic;
use super::train::fit_params;
use super::{IntentError, TrainConfig, neighbours};
use crate::head;

/// One possible threshold and what it gave on held-out training examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    pub threshold: f32,
    /// Share of held-out in-scope messages answered (not handed off) at the threshold;
    /// `None` in models stored before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_scope_retention: Option<f32>,
    /// Share of held-out in-scope messages answered with the right intent (a handoff
    /// counts as wrong).
    pub in_scope_accuracy: f32,
    /// Share of held-out messages of hidden intents handed off.
    pub oos_recall: f32,
}

/// The in-scope retention the product aims for unless a tenant chooses another: 95% of
/// the questions the bot could answer are answered.
pub const DEFAULT_RETENTION: f32 = 0.95;

/// Retention targets the curve has an exact point for, in 1/200ths: 0.800, 0.805, …
/// 1.000. With the thresholds 0.05, 0.10, … 0.95 besides, any target in the tenants'
/// range is met within half a point.
const RETENTION_STEPS: std::ops::RangeInclusive<usize> = 160..=200;

/// The highest threshold of `curve` whose held-out retention is at least `target` (a
/// hair of float noise allowed); 0 (never hand off) when no point qualifies or the curve
/// has no retention figures.
pub fn threshold_for_retention(curve: &[OperatingPoint], target: f32) -> f32 {
    curve.iter().filter(|p| p.in_scope_retention.is_some_and(|r| r >= target - 1e-6)).map(|p| p.threshold).fold(0.0, f32::max)
}

/// The curve's point at [`threshold_for_retention`], if the curve has one.
pub fn point_for_retention(curve: &[OperatingPoint], target: f32) -> Option<OperatingPoint> {
    let t = threshold_for_retention(curve, target);
    curve.iter().find(|p| p.threshold == t && p.in_scope_retention.is_some()).copied()
}

/// The trade-off on held-out messages: `in_scope` holds (confidence, was the best intent
/// right), `oos` the confidences of messages of unknown intents. A message is answered
/// when its confidence is at least the threshold. Points at 0.05, 0.10, … 0.95 and at
/// the highest threshold that keeps each of the `RETENTION_STEPS`, sorted by
/// threshold; empty without in-scope messages.
pub fn operating_points(in_scope: &[(f32, bool)], oos: &[f32]) -> Vec<OperatingPoint> {
    if in_scope.is_empty() {
        return Vec::new();
    }
    let point = |t: f32| OperatingPoint {
        threshold: t,
        in_scope_retention: Some(in_scope.iter().filter(|s| s.0 >= t).count() as f32 / in_scope.len() as f32),
        in_scope_accuracy: in_scope.iter().filter(|s| s.1 && s.0 >= t).count() as f32 / in_scope.len() as f32,
        oos_recall: oos.iter().filter(|&&s| s < t).count() as f32 / oos.len().max(1) as f32,
    };
    let mut sorted: Vec<f32> = in_scope.iter().map(|s| s.0).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let n = sorted.len();
    // Keeping ⌈k·n/200⌉ messages: the threshold is the ⌈k·n/200⌉-th highest confidence.
    let at_retention = RETENTION_STEPS.map(|k| sorted[(k * n).div_ceil(200).clamp(1, n) - 1]);
    let mut thresholds: Vec<f32> = (1..20).map(|k| k as f32 * 0.05).chain(at_retention).collect();
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();
    thresholds.into_iter().map(point).collect()
}

/// What calibration fitted and measured on the held-out training examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Softmax temperature applied to the head's logits.
    pub temperature: f32,
    /// The nearest-example vote: neighbours, temperature and share in the blend.
    pub knn_neighbours: usize,
    pub knn_temperature: f32,
    pub knn_weight: f32,
    /// Logistic weights of (ln probability, nearest-example similarity, 1): the
    /// confidence when a message has no Mahalanobis score (models stored before the
    /// distance existed, model version 1).
    pub weights: [f32; 3],
    /// Logistic weights of (ln probability, nearest-example similarity, mean similarity
    /// of the nearest examples, Mahalanobis score, 1): the confidence of models that
    /// have the distance. Absent from models stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_weights: Option<[f32; 5]>,
    /// Below this confidence the answer is a handoff.
    pub threshold: f32,
    /// Held-out in-scope accuracy without handoff.
    pub closed_accuracy: f32,
    /// Held-out in-scope accuracy with handoff (a handoff counts as wrong).
    pub in_scope_accuracy: f32,
    /// Share of held-out unknown-intent messages handed off.
    pub oos_recall: f32,
    /// Expected calibration error of the confidence over all held-out messages.
    pub expected_calibration_error: f32,
    pub in_scope_rows: usize,
    pub oos_rows: usize,
    /// The in-scope retention the threshold was chosen for; `None` in models stored
    /// before thresholds were chosen that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<f32>,
    /// The trade-off ([`operating_points`]), for choosing another retention
    /// ([`super::IntentModel::with_retention`]).
    pub curve: Vec<OperatingPoint>,
}

impl Calibration {
    /// Identity calibration: no handoff, probabilities as the head gives them.
    pub(super) fn none() -> Self {
        Self {
            temperature: 1.0,
            knn_neighbours: 0,
            knn_temperature: 1.0,
            knn_weight: 0.0,
            weights: [1.0, 0.0, 0.0],
            distance_weights: None,
            threshold: 0.0,
            closed_accuracy: 0.0,
            in_scope_accuracy: 0.0,
            oos_recall: 0.0,
            expected_calibration_error: 0.0,
            in_scope_rows: 0,
            oos_rows: 0,
            retention: None,
            curve: Vec::new(),
        }
    }

    /// Blends the head's probabilities with the vote of `neighbours` (similarity, class).
    pub(super) fn blend(&self, logits: &[f32], neighbours: &[(f32, usize)]) -> Vec<f32> {
        let mut p = head::softmax(logits, self.temperature);
        let w = self.knn_weight;
        let Some(&(top, _)) = neighbours.first().filter(|_| w > 0.0) else {
            return p;
        };
        let votes: Vec<(usize, f32)> = neighbours.iter().map(|&(s, c)| (c, ((s - top) / self.knn_temperature.max(1e-6)).exp())).collect();
        let total: f32 = votes.iter().map(|v| v.1).sum();
        p.iter_mut().for_each(|v| *v *= 1.0 - w);
        for (c, v) in votes {
            if let Some(slot) = p.get_mut(c) {
                *slot += w * v / total;
            }
        }
        p
    }

    /// The confidence from a message's scores: with the distance weights when there are
    /// both the weights and the Mahalanobis score, otherwise from the probability and the
    /// nearest-example similarity alone.
    pub(super) fn confidence(&self, s: &Scores) -> f32 {
        let ln_p = s.best_probability.max(1e-6).ln();
        match (self.distance_weights, s.mahalanobis) {
            (Some([a, b, c, d, e]), Some(m)) => sigmoid(a * ln_p + b * s.nearest + c * s.knn_mean + d * m + e),
            _ => {
                let [a, b, c] = self.weights;
                sigmoid(a * ln_p + b * s.nearest + c)
            }
        }
    }
}

impl Default for Calibration {
    fn default() -> Self {
        Self::none()
    }
}

/// The signals the confidence is computed from, for one message.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// The blend's probability of its best intent.
    pub best_probability: f32,
    /// Cosine similarity to the nearest training example.
    pub nearest: f32,
    /// Mean cosine similarity to the `knn_neighbours` nearest training examples.
    pub knn_mean: f32,
    /// Squared Mahalanobis distance to the nearest intent mean, divided by the dimension;
    /// `None` for a model stored before the distance existed.
    pub mahalanobis: Option<f32>,
}

impl Scores {
    /// The scores of a message from the blended probabilities, its nearest examples
    /// (similarity first, most similar first) and its Mahalanobis score.
    pub(super) fn new(probs: &[f32], neighbours: &[(f32, usize)], mahalanobis: Option<f32>) -> Self {
        Self {
            best_probability: probs.get(argmax(probs)).copied().unwrap_or(0.0),
            nearest: neighbours.first().map_or(-1.0, |n| n.0),
            knn_mean: if neighbours.is_empty() { -1.0 } else { neighbours.iter().map(|n| n.0).sum::<f32>() / neighbours.len() as f32 },
            mahalanobis,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A held-out message: the head's logits, its nearest fitted example, and the index of
/// the right class (`None` for a message of a hidden intent).
struct HeldOut {
    /// The message is one of the tenant's out-of-scope examples (hidden or not).
    out_of_scope: bool,
    /// The round's index of the out-of-scope class, when the round fitted it.
    out_of_scope_class: Option<usize>,
    logits: Vec<f32>,
    /// (similarity, class) of the nearest fitted examples, most similar first.
    neighbours: Vec<(f32, usize)>,
    /// The Mahalanobis score against the round's fitted examples.
    mahalanobis: f32,
    class: Option<usize>,
}

/// `out_of_scope` is the class of the tenant's out-of-scope examples, if any: its
/// held-out examples count as out-of-scope messages, and a message read as it is handed
/// off (as [`super::IntentModel`] does).
pub(super) fn calibrate(
    xs: &[&[f32]],
    ys: &[usize],
    classes: usize,
    out_of_scope: Option<usize>,
    config: &TrainConfig,
) -> Result<Calibration, IntentError> {
    let held = held_out(xs, ys, classes, out_of_scope, config)?;
    if held.iter().all(|h| h.class.is_none()) {
        return Ok(Calibration::none());
    }
    let mut calibration = Calibration {
        knn_neighbours: config.knn_neighbours,
        knn_temperature: config.knn_temperature,
        knn_weight: config.knn_weight.clamp(0.0, 1.0),
        ..Calibration::none()
    };
    calibration.temperature = fit_temperature(&held, &calibration);
    // (scores, right?, in scope?, read as out of scope?) for every held-out message; an
    // answer to an out-of-scope example is never right.
    let rows: Vec<(Scores, bool, bool, bool)> = held
        .iter()
        .map(|h| {
            let p = calibration.blend(&h.logits, &h.neighbours);
            let best = argmax(&p);
            let in_scope = h.class.is_some() && !h.out_of_scope;
            (
                Scores::new(&p, &h.neighbours, Some(h.mahalanobis)),
                in_scope && h.class == Some(best),
                in_scope,
                h.out_of_scope_class == Some(best),
            )
        })
        .collect();
    let ln = |s: &Scores| f64::from(s.best_probability.max(1e-6)).ln();
    let w = fit_logistic(&rows.iter().map(|(s, right, ..)| ([ln(s), f64::from(s.nearest)], *right)).collect::<Vec<_>>());
    calibration.weights = [w[0], w[1], w[2]];
    let w = fit_logistic(
        &rows
            .iter()
            .map(|(s, right, ..)| ([ln(s), f64::from(s.nearest), f64::from(s.knn_mean), f64::from(s.mahalanobis.unwrap_or(0.0))], *right))
            .collect::<Vec<_>>(),
    );
    calibration.distance_weights = Some([w[0], w[1], w[2], w[3], w[4]]);
    // (confidence, right?) of in-scope messages; confidences of out-of-scope ones. A
    // message read as out of scope is handed off at every threshold.
    let mut scored_in = Vec::new();
    let mut scored_oos = Vec::new();
    for r in &rows {
        let c = if r.3 { -1.0 } else { calibration.confidence(&r.0) };
        if r.2 {
            scored_in.push((c, r.1));
        } else {
            scored_oos.push(c);
        }
    }
    // Without unknown messages there is no trade-off to choose: never hand off.
    let curve = if scored_oos.is_empty() { Vec::new() } else { operating_points(&scored_in, &scored_oos) };
    let retention = config.retention.clamp(0.0, 1.0);
    let threshold = threshold_for_retention(&curve, retention);
    let chosen = point_for_retention(&curve, retention).filter(|p| p.threshold == threshold);
    let all: Vec<(f32, bool)> = scored_in.iter().copied().chain(scored_oos.iter().map(|&c| (c, false))).collect();
    calibration.threshold = threshold;
    calibration.retention = Some(retention);
    calibration.closed_accuracy = scored_in.iter().filter(|s| s.1).count() as f32 / scored_in.len().max(1) as f32;
    calibration.in_scope_accuracy = chosen.map_or(calibration.closed_accuracy, |p| p.in_scope_accuracy);
    calibration.oos_recall = chosen.map_or(0.0, |p| p.oos_recall);
    calibration.expected_calibration_error = expected_calibration_error(&all.iter().map(|&(c, r)| (c.max(0.0), r)).collect::<Vec<_>>());
    calibration.in_scope_rows = scored_in.len();
    calibration.oos_rows = scored_oos.len();
    calibration.curve = curve;
    Ok(calibration)
}

/// Runs the calibration rounds: hide some intents and some examples, fit, score the hidden.
fn held_out(
    xs: &[&[f32]],
    ys: &[usize],
    classes: usize,
    out_of_scope: Option<usize>,
    config: &TrainConfig,
) -> Result<Vec<HeldOut>, IntentError> {
    let mut held = Vec::new();
    let mut rng = StdRng::seed_from_u64(config.seed);
    // Intents are hidden in turn, from one shuffled order, so every intent gets its turn.
    let mut intent_order: Vec<usize> = (0..classes).collect();
    intent_order.shuffle(&mut rng);
    // Keep at least two known intents per round.
    let per_round = ((classes as f64 * config.unknown_intent_fraction).round() as usize).min(classes.saturating_sub(2));
    let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &y) in ys.iter().enumerate() {
        rows_of[y].push(i);
    }

    for round in 0..config.calibration_rounds {
        let hidden: BTreeSet<usize> = (0..per_round).map(|k| intent_order[(round * per_round + k) % classes]).collect();
        let known: Vec<usize> = (0..classes).filter(|c| !hidden.contains(c)).collect();
        let remap: BTreeMap<usize, usize> = known.iter().enumerate().map(|(i, &c)| (c, i)).collect();

        let (mut fit_rows, mut val_rows) = (Vec::new(), Vec::new());
        for &c in &known {
            let mut rows = rows_of[c].clone();
            rows.shuffle(&mut rng);
            // Only intents with at least two examples lend one to validation.
            let n_val = if rows.len() >= 2 {
                ((rows.len() as f64 * config.validation_fraction).round() as usize).clamp(1, rows.len() - 1)
            } else {
                0
            };
            val_rows.extend_from_slice(&rows[..n_val]);
            fit_rows.extend_from_slice(&rows[n_val..]);
        }
        let fit_x: Vec<&[f32]> = fit_rows.iter().map(|&i| xs[i]).collect();
        let fit_y: Vec<usize> = fit_rows.iter().map(|&i| remap[&ys[i]]).collect();
        let dim = xs[0].len();
        let head = head::fit(&fit_x, &fit_y, known.len(), &fit_params(config, dim, round as u64 + 1))?;
        let distance = Mahalanobis::fit(&fit_x, &fit_y, known.len())?;
        tracing::debug!(round, hidden = hidden.len(), fit = fit_rows.len(), val = val_rows.len(), "calibration round");

        let oos_rows: Vec<usize> = hidden.iter().flat_map(|&c| rows_of[c].iter().copied()).collect();
        let scored: Vec<usize> = val_rows.iter().chain(&oos_rows).copied().collect();
        let queries: Vec<&[f32]> = scored.iter().map(|&i| xs[i]).collect();
        let exemplars = super::Exemplars::new(fit_x.concat(), dim)?;
        let found = neighbours(&queries, &exemplars, config.knn_neighbours.max(1))?;
        for (&i, found) in scored.iter().zip(found) {
            held.push(HeldOut {
                out_of_scope: out_of_scope == Some(ys[i]),
                out_of_scope_class: out_of_scope.and_then(|c| remap.get(&c).copied()),
                logits: head.logits(xs[i]),
                neighbours: found.into_iter().map(|(s, j)| (s, fit_y[j])).collect(),
                mahalanobis: distance.score(xs[i]),
                class: remap.get(&ys[i]).copied().filter(|_| !hidden.contains(&ys[i])),
            });
        }
    }
    Ok(held)
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

/// The temperature minimising held-out negative log-likelihood (log-spaced grid search).
///
/// The grid starts at 0.5: when every held-out answer is right (tiny training sets) the
/// likelihood keeps rising as the temperature falls, which would saturate every
/// probability to 1.
fn fit_temperature(held: &[HeldOut], calibration: &Calibration) -> f32 {
    let nll = |t: f32| -> f64 {
        let c = Calibration { temperature: t, ..calibration.clone() };
        held.iter()
            .filter_map(|h| h.class.map(|y| (h, y)))
            .map(|(h, y)| -f64::from(c.blend(&h.logits, &h.neighbours)[y].max(1e-12)).ln())
            .sum::<f64>()
    };
    let mut best = (1.0f32, nll(1.0));
    for k in 0..=100 {
        // 0.5 … 20
        let t = 0.5f32 * 40f32.powf(k as f32 / 100.0);
        let v = nll(t);
        if v < best.1 {
            best = (t, v);
        }
    }
    best.0
}

/// Expected calibration error over 10 equal-width confidence bins.
fn expected_calibration_error(scores: &[(f32, bool)]) -> f32 {
    if scores.is_empty() {
        return 0.0;
    }
    let mut bins = [(0usize, 0f64, 0usize); 10];
    for &(conf, right) in scores {
        let b = ((conf * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += f64::from(conf);
        bins[b].2 += usize::from(right);
    }
    let n = scores.len() as f64;
    bins.iter()
        .filter(|b| b.0 > 0)
        .map(|&(count, conf, right)| (count as f64 / n) * (conf / count as f64 - right as f64 / count as f64).abs())
        .sum::<f64>() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(threshold: f32, retention: Option<f32>) -> OperatingPoint {
        OperatingPoint { threshold, in_scope_retention: retention, in_scope_accuracy: 0.5, oos_recall: 0.5 }
    }

    #[test]
    fn the_threshold_for_a_retention_is_the_highest_that_keeps_it() {
        let curve = [point(0.2, Some(1.0)), point(0.4, Some(0.97)), point(0.5, Some(0.95)), point(0.6, Some(0.90)), point(0.8, Some(0.5))];
        assert_eq!(threshold_for_retention(&curve, 0.95), 0.5);
        assert_eq!(threshold_for_retention(&curve, 0.96), 0.4);
        assert_eq!(threshold_for_retention(&curve, 0.85), 0.6);
        assert_eq!(threshold_for_retention(&curve, 0.99), 0.2);
        assert_eq!(point_for_retention(&curve, 0.9), Some(curve[3]));
        // Nothing keeps more than everything, and an old curve without retention
        // figures never hands off.
        assert_eq!(threshold_for_retention(&curve[1..], 1.0), 0.0);
        assert_eq!(threshold_for_retention(&[point(0.5, None)], 0.9), 0.0);
        assert_eq!(point_for_retention(&[point(0.5, None)], 0.9), None);
    }

    #[test]
    fn operating_points_keep_each_target_within_half_a_point() {
        // 200 in-scope confidences 0.005 … 1.000 (every third one wrong), 4 unknown.
        let in_scope: Vec<(f32, bool)> = (1..=200).map(|i| (i as f32 / 200.0, i % 3 != 0)).collect();
        let oos = [0.01, 0.03, 0.9, 0.95];
        let curve = operating_points(&in_scope, &oos);
        assert!(curve.windows(2).all(|w| w[0].threshold < w[1].threshold));
        for target in [0.80, 0.85, 0.9, 0.95, 0.98, 0.995] {
            let p = point_for_retention(&curve, target).unwrap();
            let kept = p.in_scope_retention.unwrap();
            assert!(kept >= target - 1e-6 && kept <= target + 0.005 + 1e-6, "{target}: {kept}");
        }
        // 95%: keep 190 of 200, so the threshold is the 190th highest, 0.055; it hands
        // off 0.01 and 0.03 of the unknown and answers 0.9 and 0.95.
        let p = point_for_retention(&curve, 0.95).unwrap();
        assert_eq!(p.threshold, 0.055);
        assert_eq!(p.oos_recall, 0.5);
        let right = in_scope.iter().filter(|s| s.1 && s.0 >= 0.055).count();
        assert_eq!(p.in_scope_accuracy, right as f32 / 200.0);
        assert!(operating_points(&[], &oos).is_empty());
    }

    #[test]
    fn calibration_error_is_zero_when_confidence_matches_accuracy() {
        let perfect = [(0.95, true), (0.95, true)];
        assert!(expected_calibration_error(&perfect) < 0.06);
        let overconfident = [(0.95, false), (0.95, false)];
        assert!(expected_calibration_error(&overconfident) > 0.9);
    }
}
