//! Loops the compiler vectorises: floating-point sums written as independent
//! lanes (it may not reorder a plain `iter().sum()`), compiled for the widest
//! vector instructions the CPU has through [`vectorized`] (pulp's run-time
//! dispatch: AVX-512, AVX2, …). Used by the encoder ([`crate::bert`]) and the
//! intent model's nearest-example search, head and distance.

/// Runs `f` compiled for the widest vector instructions this CPU has (AVX-512, AVX2, …).
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    struct Op<F>(F);
    impl<R, F: FnOnce() -> R> pulp::WithSimd for Op<F> {
        type Output = R;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> R {
            (self.0)()
        }
    }
    pulp::Arch::new().dispatch(Op(f))
}

/// Lanes of the explicit accumulators below: floating-point sums are only vectorised
/// when written as independent lanes.
const LANES: usize = 16;

/// The sum of `xs`.
#[inline(always)]
pub fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The dot product of `a` and `b` (of equal length).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((s, p), q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }
    acc.iter().sum::<f32>() + ca.remainder().iter().zip(cb.remainder()).map(|(p, q)| p * q).sum::<f32>()
}
