//! The out-of-scope distance: how far a message lies from every intent taught.
//!
//! A softmax head must pick one of the intents it knows, so a message about something
//! else can still look confident. Distances to the training data do not have that
//! blind spot (Podolskiy et al., AAAI 2021): model each intent's embeddings as a Gaussian
//! around the intent's mean with one covariance shared by all intents, and score a message
//! by its Mahalanobis distance to the nearest mean. With 384 dimensions and a few thousand
//! examples the sample covariance is poorly conditioned, so it is shrunk towards a
//! multiple of the identity by Ledoit-Wolf ([`super::solve::ledoit_wolf`]).
//!
//! Training factors the shrunk covariance `Σ = L·Lᵀ` and keeps the whitening `W = L⁻¹` and
//! the whitened means `W·μ_c`: `(x − μ)ᵀ Σ⁻¹ (x − μ) = ‖W·x − W·μ‖²`, so a query costs one
//! `d × d` (triangular) product plus one squared distance per intent.

use serde::{Deserialize, Serialize};

use super::IntentError;
use super::solve::{cholesky, invert_lower, ledoit_wolf};

/// Added to the diagonal of the shrunk covariance so it is always positive definite
/// (coordinates of unit 384-d vectors have variances of about 10⁻³).
const FLOOR: f64 = 1e-6;

/// Shared-covariance Mahalanobis distance to the nearest intent mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Mahalanobis {
    pub dim: usize,
    /// `W = L⁻¹`, row-major `dim × dim`, lower-triangular.
    pub whitening: Vec<f32>,
    /// `W·μ_c` of each intent with examples, row-major, `dim` wide.
    pub means: Vec<f32>,
    /// The Ledoit-Wolf shrinkage that was applied (for the record).
    pub shrinkage: f32,
}

impl Mahalanobis {
    /// Fits the class means and the shrunk shared covariance of `xs` (labels `ys` in
    /// `0..classes`, all rows `dim` long).
    pub fn fit(xs: &[&[f32]], ys: &[usize], classes: usize) -> Result<Self, IntentError> {
        let dim = xs.first().map_or(0, |x| x.len());
        let n = xs.len();
        let mut sums = vec![0.0f64; classes * dim];
        let mut counts = vec![0usize; classes];
        for (x, &y) in xs.iter().zip(ys) {
            counts[y] += 1;
            sums[y * dim..(y + 1) * dim].iter_mut().zip(x.iter()).for_each(|(s, &v)| *s += f64::from(v));
        }
        for (c, &count) in counts.iter().enumerate() {
            sums[c * dim..(c + 1) * dim].iter_mut().for_each(|s| *s /= count.max(1) as f64);
        }
        let residuals: Vec<f32> = xs
            .iter()
            .zip(ys)
            .flat_map(|(x, &y)| x.iter().zip(&sums[y * dim..(y + 1) * dim]).map(|(&v, &m)| (f64::from(v) - m) as f32))
            .collect();
        let mean_fourth = residuals.chunks_exact(dim.max(1)).map(|r| r.iter().map(|&v| f64::from(v * v)).sum::<f64>().powi(2)).sum::<f64>()
            / n.max(1) as f64;
        let mut cov = scatter(residuals, n, dim)?;
        let shrinkage = ledoit_wolf(&mut cov, dim, n, mean_fourth);
        for i in 0..dim {
            cov[i * dim + i] += FLOOR;
        }
        let l = cholesky(&cov, dim).ok_or_else(|| IntentError::InvalidModel("the shared covariance is not positive definite".into()))?;
        let w = invert_lower(&l, dim);
        let mut means = Vec::new();
        for (c, _) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let mu = &sums[c * dim..(c + 1) * dim];
            means.extend((0..dim).map(|i| (0..=i).map(|k| w[i * dim + k] * mu[k]).sum::<f64>() as f32));
        }
        Ok(Self { dim, whitening: w.into_iter().map(|v| v as f32).collect(), means, shrinkage: shrinkage as f32 })
    }

    /// The squared Mahalanobis distance to the nearest intent mean, divided by the
    /// dimension (about 1 for a typical example of a taught intent, larger further out).
    pub fn score(&self, x: &[f32]) -> f32 {
        let d = self.dim;
        let z: Vec<f32> = (0..d)
            .map(|i| {
                let n = (i + 1).min(x.len());
                crate::simd::dot(&self.whitening[i * d..i * d + n], &x[..n])
            })
            .collect();
        let best = self
            .means
            .chunks_exact(d.max(1))
            .map(|m| m.iter().zip(&z).map(|(a, b)| (a - b) * (a - b)).sum::<f32>())
            .fold(f32::INFINITY, f32::min);
        best / d.max(1) as f32
    }

    /// Whether the arrays have the shapes the header claims and are finite.
    pub fn is_consistent(&self, dim: usize) -> bool {
        self.dim == dim
            && dim > 0
            && self.whitening.len() == dim * dim
            && !self.means.is_empty()
            && self.means.len().is_multiple_of(dim)
            && self.whitening.iter().chain(&self.means).all(|v| v.is_finite())
    }
}

/// `Rᵀ·R / n` of the `n × dim` row-major `r`, in f64 (the product runs in candle).
fn scatter(r: Vec<f32>, n: usize, dim: usize) -> Result<Vec<f64>, IntentError> {
    use candle_core::{Device, Tensor};
    let t = Tensor::from_vec(r, (n, dim), &Device::Cpu)?;
    let s = t.t()?.matmul(&t)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(s.into_iter().map(|v| f64::from(v) / n.max(1) as f64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_far_point_scores_above_a_near_one() {
        // Two elongated clusters: spread along x, tight along y.
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for k in 0..20 {
            let t = (k as f32 - 10.0) / 10.0;
            xs.push(vec![t, 0.02 * (k % 3) as f32, 0.0]);
            ys.push(0);
            xs.push(vec![t, 1.0 + 0.02 * (k % 3) as f32, 0.01 * (k % 2) as f32]);
            ys.push(1);
        }
        let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let m = Mahalanobis::fit(&refs, &ys, 2).unwrap();
        assert!(m.is_consistent(3));
        assert!(m.shrinkage >= 0.0 && m.shrinkage <= 1.0);
        // Along the spread direction a point is near; across it, as far in Euclidean
        // terms, it is far.
        let near = m.score(&[0.5, 0.0, 0.0]);
        let far = m.score(&[0.0, 0.5, 0.0]);
        assert!(far > 10.0 * near, "near {near}, far {far}");
        // The training points are typical.
        let typical = refs.iter().map(|x| m.score(x)).sum::<f32>() / refs.len() as f32;
        assert!(typical < far);
    }

    #[test]
    fn identical_examples_still_give_a_finite_distance() {
        let xs = [[1.0f32, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]];
        let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
        let m = Mahalanobis::fit(&refs, &[0, 0, 1, 1], 2).unwrap();
        assert!(m.score(&[1.0, 0.0]) < 1e-3);
        let far = m.score(&[0.7, 0.7]);
        assert!(far.is_finite() && far > 1.0);
    }
}
