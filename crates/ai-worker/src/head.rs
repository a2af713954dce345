//! The classification head: multinomial logistic regression on frozen sentence embeddings.
//!
//! Training uses candle's autograd (AdamW on mini-batches of the cross-entropy loss);
//! prediction is a plain matrix-vector product in Rust, so a trained head needs no tensor
//! library at run time and serialises as two arrays.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of one head fit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FitParams {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub input_scale: f32,
    pub label_smoothing: f64,
    pub seed: u64,
}

/// A linear softmax classifier: `logits = W · (scale · x) + b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LinearHead {
    pub classes: usize,
    pub dim: usize,
    /// Row-major `classes × dim`.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub input_scale: f32,
}

impl LinearHead {
    /// Logits of one embedding. `x.len()` must equal `dim` (checked by callers).
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        self.weights.chunks_exact(self.dim).zip(&self.bias).map(|(row, b)| self.input_scale * crate::simd::dot(row, x) + b).collect()
    }

    /// Whether the arrays have the shapes the header claims.
    pub fn is_consistent(&self) -> bool {
        self.classes > 0
            && self.weights.len() == self.classes * self.dim
            && self.bias.len() == self.classes
            && self.weights.iter().chain(&self.bias).all(|v| v.is_finite())
    }
}

/// Fits a head on `xs` (all of one length) with class indices `ys` in `0..classes`.
pub(crate) fn fit(xs: &[&[f32]], ys: &[usize], classes: usize, p: &FitParams) -> candle_core::Result<LinearHead> {
    let device = Device::Cpu;
    let n = xs.len();
    let dim = xs.first().map_or(0, |x| x.len());
    let flat: Vec<f32> = xs.iter().flat_map(|x| x.iter().map(|v| v * p.input_scale)).collect();
    let x_all = Tensor::from_vec(flat, (n, dim), &device)?;
    let y_all = Tensor::from_vec(ys.iter().map(|&y| y as u32).collect::<Vec<_>>(), n, &device)?;

    let w = Var::zeros((dim, classes), DType::F32, &device)?;
    let b = Var::zeros(classes, DType::F32, &device)?;
    let mut opt = AdamW::new(
        vec![w.clone(), b.clone()],
        ParamsAdamW { lr: p.learning_rate, weight_decay: p.weight_decay, ..ParamsAdamW::default() },
    )?;
    let mut rng = StdRng::seed_from_u64(p.seed);
    let mut order: Vec<u32> = (0..n as u32).collect();
    let batch = p.batch_size.max(1);
    let steps_per_epoch = n.div_ceil(batch);
    let total = (p.epochs * steps_per_epoch).max(1);
    let mut step = 0usize;
    for _ in 0..p.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(batch) {
            // Cosine decay of the learning rate to zero.
            let progress = step as f64 / total as f64;
            opt.set_learning_rate(p.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
            step += 1;
            let idx = Tensor::from_slice(chunk, chunk.len(), &device)?;
            let x = x_all.index_select(&idx, 0)?;
            let y = y_all.index_select(&idx, 0)?;
            let logits = x.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
            let loss = smoothed_cross_entropy(&logits, &y, p.label_smoothing)?;
            opt.backward_step(&loss)?;
        }
    }
    // Stored as classes × dim for cache-friendly prediction.
    let weights = w.as_tensor().t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let bias = b.as_tensor().to_vec1::<f32>()?;
    Ok(LinearHead { classes, dim, weights, bias, input_scale: p.input_scale })
}

/// Cross-entropy against targets smoothed by `eps` (mass `eps` spread over all classes).
fn smoothed_cross_entropy(logits: &Tensor, targets: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let nll = candle_nn::loss::nll(&log_p, targets)?;
    if eps <= 0.0 {
        return Ok(nll);
    }
    let uniform = (log_p.mean_all()? * -1.0)?; // mean over classes and rows of −log p
    (nll * (1.0 - eps))? + (uniform * eps)?
}

/// Softmax of `logits / temperature`, numerically stable.
pub(crate) fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = temperature.max(1e-6);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| ((l - max) / t).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> FitParams {
        FitParams { epochs: 60, batch_size: 8, learning_rate: 0.05, weight_decay: 0.0, input_scale: 1.0, label_smoothing: 0.0, seed: 7 }
    }

    #[test]
    fn separates_three_clusters() {
        let centres = [[1.0f32, 0.0], [0.0, 1.0], [-1.0, -1.0]];
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for k in 0..10 {
                let jitter = (k as f32 - 5.0) * 0.02;
                xs.push(vec![centre[0] + jitter, centre[1] - jitter]);
                ys.push(c);
            }
        }
        let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let head = fit(&refs, &ys, 3, &params()).unwrap();
        assert!(head.is_consistent());
        for (x, &y) in xs.iter().zip(&ys) {
            let l = head.logits(x);
            let best = (0..3).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap();
            assert_eq!(best, y);
        }
    }

    #[test]
    fn softmax_sums_to_one_and_sharpens_with_low_temperature() {
        let p = softmax(&[1.0, 2.0, 3.0], 1.0);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let sharp = softmax(&[1.0, 2.0, 3.0], 0.1);
        assert!(sharp[2] > p[2]);
        let big = softmax(&[1000.0, 0.0], 1.0);
        assert!(big[0].is_finite() && (big[0] - 1.0).abs() < 1e-6);
    }
}
