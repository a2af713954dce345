//! Small numerical fits with no knowledge of intents: logistic regression by Newton's
//! method and the linear solve each of its steps needs; Ledoit-Wolf shrinkage of a
//! covariance matrix, its Cholesky factor and the inverse of that factor (the whitening
//! the Mahalanobis distance uses). Matrices are row-major `Vec<f64>`s, `d × d`.

/// Logistic regression of `right` on `F` features plus a bias, by Newton's method with a
/// small ridge penalty on the feature weights (so that separable data still gives finite
/// weights). Returns `F + 1` weights, the bias last.
pub(super) fn fit_logistic<const F: usize>(rows: &[([f64; F], bool)]) -> Vec<f32> {
    let n = F + 1;
    let mut w = vec![0.0f64; n];
    // A fixed penalty: it only matters when the data are (nearly) separable.
    let ridge = 1.0;
    for _ in 0..50 {
        let mut grad: Vec<f64> = (0..n).map(|i| if i < F { ridge * w[i] } else { 0.0 }).collect();
        let mut hess = vec![0.0f64; n * n];
        for i in 0..n {
            hess[i * n + i] = if i < F { ridge } else { 1e-9 };
        }
        for (f, right) in rows {
            let x: Vec<f64> = f.iter().copied().chain([1.0]).collect();
            let z: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = f64::from(u8::from(*right));
            for i in 0..n {
                grad[i] += (p - y) * x[i];
                for j in 0..n {
                    hess[i * n + j] += p * (1.0 - p) * x[i] * x[j];
                }
            }
        }
        let Some(step) = solve(hess, grad) else {
            break;
        };
        let mut moved = 0.0f64;
        for (wi, si) in w.iter_mut().zip(&step) {
            *wi -= si;
            moved = moved.max(si.abs());
        }
        if moved < 1e-8 {
            break;
        }
    }
    w.into_iter().map(|v| v as f32).collect()
}

/// Solves `a · x = b` (`a` row-major, `n × n`) by Gaussian elimination with partial
/// pivoting; `None` when `a` is singular.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[pivot * n + col].abs() < 1e-12 {
            return None;
        }
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
        }
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row * n + col] / a[col * n + col];
            for k in col..n {
                a[row * n + k] -= f * a[col * n + k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0f64; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row * n + k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row * n + row];
    }
    Some(x)
}

/// Ledoit-Wolf shrinkage (Ledoit & Wolf 2004, as scikit-learn computes it) of the sample
/// covariance `s` (`d × d`, `s = Σ r rᵀ / n` over `n` centred rows `r`) towards `μ·I`,
/// `μ = tr(s) / d`, in place. `mean_fourth` is `Σ ‖r‖⁴ / n`. Returns the shrinkage, in
/// `[0, 1]`.
pub(super) fn ledoit_wolf(s: &mut [f64], d: usize, n: usize, mean_fourth: f64) -> f64 {
    if d == 0 || n == 0 {
        return 0.0;
    }
    let mu = (0..d).map(|i| s[i * d + i]).sum::<f64>() / d as f64;
    let frob: f64 = s.iter().map(|v| v * v).sum();
    // ‖s − μI‖² / d and the (capped) estimate of the sampling error of s.
    let delta = (frob - 2.0 * mu * mu * d as f64 + mu * mu * d as f64) / d as f64;
    let beta = ((mean_fourth - frob) / (n as f64 * d as f64)).max(0.0).min(delta);
    let shrinkage = if delta > 0.0 { beta / delta } else { 0.0 };
    for i in 0..d {
        for j in 0..d {
            let v = &mut s[i * d + j];
            *v *= 1.0 - shrinkage;
            if i == j {
                *v += shrinkage * mu;
            }
        }
    }
    shrinkage
}

/// The lower-triangular `l` with `l · lᵀ = a`; `None` unless `a` is positive definite.
pub(super) fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                let v = a[i * d + i] - s;
                if !(v > 0.0 && v.is_finite()) {
                    return None;
                }
                l[i * d + i] = v.sqrt();
            } else {
                l[i * d + j] = (a[i * d + j] - s) / l[j * d + j];
            }
        }
    }
    Some(l)
}

/// The inverse of a lower-triangular matrix with a non-zero diagonal (lower-triangular too).
pub(super) fn invert_lower(l: &[f64], d: usize) -> Vec<f64> {
    let mut inv = vec![0.0f64; d * d];
    for col in 0..d {
        // Forward substitution of l · x = e_col; x is zero above `col`.
        for i in col..d {
            let s: f64 = (col..i).map(|k| l[i * d + k] * inv[k * d + col]).sum();
            let e = if i == col { 1.0 } else { 0.0 };
            inv[i * d + col] = (e - s) / l[i * d + i];
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_fit_orders_by_both_features() {
        // Right answers have high probability and a near example; wrong ones neither.
        let mut rows = Vec::new();
        for k in 0..50 {
            let j = f64::from(k) / 50.0;
            rows.push(([-0.1 * j, 0.8 + 0.1 * j], true));
            rows.push(([-1.0 - j, 0.4 + 0.1 * j], false));
        }
        rows.push(([-0.05, 0.85], false));
        let w = fit_logistic(&rows);
        assert!(w[0] > 0.0 && w[1] > 0.0, "{w:?}");
        assert_eq!(solve(vec![2.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 1.0], vec![2.0, 2.0, 3.0]), Some(vec![1.0, 0.5, 3.0]));
        assert_eq!(solve(vec![0.0; 9], vec![1.0; 3]), None);
        // A pivot is needed: the first column's top entry is zero.
        assert_eq!(solve(vec![0.0, 1.0, 1.0, 0.0], vec![2.0, 3.0]), Some(vec![3.0, 2.0]));
    }

    /// Two classes of four points in three dimensions; the residuals are the rows minus
    /// their class mean. The expected figures are scikit-learn 1.9's
    /// `ledoit_wolf(R, assume_centered=True)` on these residuals.
    #[test]
    fn ledoit_wolf_matches_scikit_learn_on_a_small_fixture() {
        let x = [
            [1.0, 0.2, 0.0],
            [0.8, -0.1, 0.3],
            [1.2, 0.1, -0.2],
            [0.9, 0.4, 0.1],
            [0.0, 1.0, 0.5],
            [0.3, 1.3, 0.2],
            [-0.2, 0.8, 0.4],
            [0.1, 0.9, 0.9],
        ];
        let mut r: Vec<[f64; 3]> = Vec::new();
        for class in x.chunks(4) {
            let mean: Vec<f64> = (0..3).map(|j| class.iter().map(|p| p[j]).sum::<f64>() / 4.0).collect();
            r.extend(class.iter().map(|p| [p[0] - mean[0], p[1] - mean[1], p[2] - mean[2]]));
        }
        let n = r.len();
        let mut s = vec![0.0f64; 9];
        for row in &r {
            for i in 0..3 {
                for j in 0..3 {
                    s[i * 3 + j] += row[i] * row[j] / n as f64;
                }
            }
        }
        let fourth = r.iter().map(|row| row.iter().map(|v| v * v).sum::<f64>().powi(2)).sum::<f64>() / n as f64;
        let shrinkage = ledoit_wolf(&mut s, 3, n, fourth);
        assert!((shrinkage - 0.711_837_732_846_578_6).abs() < 1e-9, "{shrinkage}");
        let expected = [
            0.033_860_978_745,
            0.004_862_738_258,
            -0.004_862_738_258,
            0.004_862_738_258,
            0.035_752_043_624,
            -0.005_403_042_509,
            -0.004_862_738_258,
            -0.005_403_042_509,
            0.040_074_477_631,
        ];
        for (a, b) in s.iter().zip(expected) {
            assert!((a - b).abs() < 1e-10, "{s:?}");
        }
    }

    #[test]
    fn cholesky_and_its_inverse_whiten() {
        let a = vec![4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        // l · lᵀ = a, and l⁻¹ · l = I.
        for i in 0..3 {
            for j in 0..3 {
                let llt: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((llt - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        let inv = invert_lower(&l, 3);
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| inv[i * 3 + k] * l[k * 3 + j]).sum();
                assert!((p - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none(), "not positive definite");
    }
}
