//! Small numerical fits with no knowledge of intents: logistic regression by Newton's
//! method, and the 3×3 linear solve each of its steps needs.

/// Logistic regression of `right` on two features plus a bias, by Newton's method with a
/// small ridge penalty (so that separable data still gives finite weights).
pub(super) fn fit_logistic(rows: &[([f64; 2], bool)]) -> [f32; 3] {
    let mut w = [0.0f64; 3];
    // A fixed penalty: it only matters when the data are (nearly) separable.
    let ridge = 1.0;
    for _ in 0..50 {
        let mut grad = [0.0f64; 3];
        let mut hess = [[0.0f64; 3]; 3];
        for (i, g) in grad.iter_mut().enumerate() {
            *g = ridge * w[i] * f64::from(u8::from(i < 2));
        }
        for (i, h) in hess.iter_mut().enumerate() {
            h[i] = if i < 2 { ridge } else { 1e-9 };
        }
        for (f, right) in rows {
            let x = [f[0], f[1], 1.0];
            let z: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = f64::from(u8::from(*right));
            for i in 0..3 {
                grad[i] += (p - y) * x[i];
                for j in 0..3 {
                    hess[i][j] += p * (1.0 - p) * x[i] * x[j];
                }
            }
        }
        let Some(step) = solve3(hess, grad) else {
            break;
        };
        let mut moved = 0.0f64;
        for i in 0..3 {
            w[i] -= step[i];
            moved = moved.max(step[i].abs());
        }
        if moved < 1e-8 {
            break;
        }
    }
    [w[0] as f32, w[1] as f32, w[2] as f32]
}

/// Solves `a · x = b` for a 3×3 system by Gaussian elimination with partial pivoting.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..3 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (v, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *v -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0f64; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
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
        let [a, b, _] = fit_logistic(&rows);
        assert!(a > 0.0 && b > 0.0, "{a} {b}");
        assert_eq!(solve3([[2.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 1.0]], [2.0, 2.0, 3.0]), Some([1.0, 0.5, 3.0]));
        assert_eq!(solve3([[0.0; 3]; 3], [1.0; 3]), None);
    }
}
