//! Our own forward pass of the BERT encoder (all-MiniLM-L6-v2), on CPU.
//!
//! The same arithmetic as candle-transformers' `BertModel` (and PyTorch's), arranged for
//! short sentences in batches:
//!
//! - **No padding.** Every layer but attention works token by token, so a batch is one
//!   `(tokens, hidden)` matrix of the real tokens of all its sentences, back to back;
//!   attention runs per sentence over that sentence's rows only. Masked attention over a
//!   padded batch gives the same numbers (a masked score's weight is exactly zero) for
//!   more work.
//! - **Pre-arranged weights.** The query, key and value projections are one
//!   `(hidden, 3·hidden)` matrix (one matrix product instead of three), and every weight
//!   is stored transposed, `(in, out)` and contiguous, as gemm reads it best.
//! - **The big products through candle's `matmul`** (gemm, with its AVX-512 kernels where
//!   the CPU has them: the workspace turns on gemm's `x86-v4`); everything else —
//!   attention (a few thousand tiny dot products per sentence, where a gemm call's set-up
//!   cost more than the arithmetic), bias, residual, layer norm, GELU — in loops here,
//!   compiled for the CPU's widest vectors at run time ([`pulp`]'s dispatch) and spread
//!   over the encoder's threads.
//! - **GELU with a vectorisable `erf`** ([`erf`]: a rational approximation, within 2e-7
//!   of the exact function, as close as `f32` holds it) instead of libm's scalar one.
//!
//! - **bf16 on AMX tiles where the CPU has them** ([`Precision::Auto`], the default): the
//!   four products of each layer in bf16 with f32 sums ([`jamuna_amx`]: Intel Sapphire
//!   Rapids and later), everything else in f32. Elsewhere, or with [`Precision::F32`],
//!   every product is f32.
//!
//! The encoder runs on its own rayon pool of a set number of threads (config
//! `model.threads`); gemm splits each product over that pool.

use crate::simd::{dot, sum, vectorized};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use rayon::prelude::*;

/// Rows (tokens) per parallel task in the element-wise steps.
const ROWS_PER_TASK: usize = 32;

/// A layer norm's scale and shift.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// How the encoder's matrix products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// bf16 inputs with f32 sums on AMX tiles where this CPU and kernel have them, f32
    /// elsewhere. Every embedding stays within cosine 0.995 of the f32 one (measured
    /// over BANKING77's 10,003 questions; pinned by a test).
    Auto,
    /// f32 everywhere (gemm).
    F32,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            other => Err(format!("{other:?} is not a precision: auto or f32")),
        }
    }
}

/// A weight matrix `(in, out)` as the products read it.
enum Weight {
    /// f32, through candle's `matmul` (gemm).
    F32(Tensor),
    /// bf16, packed for AMX tiles.
    Bf16(jamuna_amx::PackedBf16),
}

impl Weight {
    /// `t`, `(k, n)`, in bf16 when `bf16` and the tiles cover its shape, else in f32.
    fn new(t: Tensor, bf16: bool) -> candle_core::Result<Self> {
        if bf16 {
            let (k, n) = t.dims2()?;
            if let Some(packed) = jamuna_amx::PackedBf16::pack(&t.flatten_all()?.to_vec1::<f32>()?, k, n) {
                return Ok(Self::Bf16(packed));
            }
        }
        Ok(Self::F32(t))
    }
}

/// One transformer layer, its weights arranged for the forward pass.
struct Layer {
    /// `(hidden, 3·hidden)`: query, key and value side by side.
    qkv: Weight,
    qkv_bias: Vec<f32>,
    attn_out: Weight,
    attn_out_bias: Vec<f32>,
    attn_norm: Norm,
    /// `(hidden, intermediate)`.
    up: Weight,
    up_bias: Vec<f32>,
    /// `(intermediate, hidden)`.
    down: Weight,
    down_bias: Vec<f32>,
    out_norm: Norm,
}

/// The encoder: embeddings, layers and the thread pool they run on.
pub struct Bert {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    vocab: usize,
    max_positions: usize,
    eps: f32,
    pool: rayon::ThreadPool,
    threads: usize,
}

impl std::fmt::Debug for Bert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bert")
            .field("hidden", &self.hidden)
            .field("layers", &self.layers.len())
            .field("threads", &self.threads)
            .field("bf16", &self.bf16())
            .finish()
    }
}

fn vec1(vb: &VarBuilder, len: usize, name: &str) -> candle_core::Result<Vec<f32>> {
    vb.get(len, name)?.to_vec1::<f32>()
}

fn norm(vb: &VarBuilder, hidden: usize) -> candle_core::Result<Norm> {
    Ok(Norm { gamma: vec1(vb, hidden, "weight")?, beta: vec1(vb, hidden, "bias")? })
}

/// A linear layer's weight, `(out, in)` in the file, as a contiguous `(in, out)` matrix.
fn transposed(vb: &VarBuilder, out: usize, inp: usize, name: &str) -> candle_core::Result<Tensor> {
    vb.get((out, inp), name)?.t()?.contiguous()
}

impl Bert {
    /// Builds the encoder from the weights in `vb` (a Hugging Face `BertModel` checkpoint),
    /// to run on `threads` threads with its products in `precision`.
    pub fn load(vb: VarBuilder, config: &Config, threads: usize, precision: Precision) -> candle_core::Result<Self> {
        let bf16 = precision == Precision::Auto && jamuna_amx::available();
        let (h, inter) = (config.hidden_size, config.intermediate_size);
        if config.num_attention_heads == 0 || h % config.num_attention_heads != 0 {
            candle_core::bail!("hidden size {h} is not a multiple of {} heads", config.num_attention_heads);
        }
        let emb = vb.pp("embeddings");
        let word = emb.get((config.vocab_size, h), "word_embeddings.weight")?.flatten_all()?.to_vec1::<f32>()?;
        let position = emb.get((config.max_position_embeddings, h), "position_embeddings.weight")?.flatten_all()?.to_vec1::<f32>()?;
        let token_type = emb.get((config.type_vocab_size, h), "token_type_embeddings.weight")?.get(0)?.to_vec1::<f32>()?;
        let embed_norm = norm(&emb.pp("LayerNorm"), h)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let attn = l.pp("attention.self");
            let weights = ["query", "key", "value"].map(|p| attn.get((h, h), &format!("{p}.weight")));
            let [q, k, v] = weights;
            let qkv = Weight::new(Tensor::cat(&[q?, k?, v?], 0)?.t()?.contiguous()?, bf16)?;
            let mut qkv_bias = Vec::with_capacity(3 * h);
            for p in ["query", "key", "value"] {
                qkv_bias.extend(vec1(&attn, h, &format!("{p}.bias"))?);
            }
            layers.push(Layer {
                qkv,
                qkv_bias,
                attn_out: Weight::new(transposed(&l, h, h, "attention.output.dense.weight")?, bf16)?,
                attn_out_bias: vec1(&l, h, "attention.output.dense.bias")?,
                attn_norm: norm(&l.pp("attention.output.LayerNorm"), h)?,
                up: Weight::new(transposed(&l, inter, h, "intermediate.dense.weight")?, bf16)?,
                up_bias: vec1(&l, inter, "intermediate.dense.bias")?,
                down: Weight::new(transposed(&l, h, inter, "output.dense.weight")?, bf16)?,
                down_bias: vec1(&l, h, "output.dense.bias")?,
                out_norm: norm(&l.pp("output.LayerNorm"), h)?,
            });
        }
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("jamuna-encoder-{i}"))
            .build()
            .map_err(|e| candle_core::Error::Msg(format!("cannot start the encoder's threads: {e}")))?;
        Ok(Self {
            word,
            position,
            token_type,
            embed_norm,
            layers,
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: inter,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            eps: config.layer_norm_eps as f32,
            pool,
            threads,
        })
    }

    /// Threads the encoder runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether the products run in bf16 on AMX tiles (else f32): whether the weights
    /// were packed for them.
    pub fn bf16(&self) -> bool {
        self.layers.iter().any(|l| matches!(l.qkv, Weight::Bf16(_)))
    }

    /// Embeds a batch of token-id sequences: each sentence's mean-pooled, L2-normalised
    /// last hidden state, in the input order. Ids past the vocabulary and sequences
    /// longer than the position table are errors.
    pub fn embed(&self, batch: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        for ids in batch {
            if ids.len() > self.max_positions {
                candle_core::bail!("{} tokens, more than the {} positions", ids.len(), self.max_positions);
            }
            if let Some(id) = ids.iter().find(|&&id| id as usize >= self.vocab) {
                candle_core::bail!("token id {id} outside the vocabulary of {}", self.vocab);
            }
        }
        self.pool.install(|| self.forward(batch))
    }

    fn forward(&self, batch: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let lens: Vec<usize> = batch.iter().map(|ids| ids.len()).collect();
        let tokens: usize = lens.iter().sum();
        if tokens == 0 {
            return Ok(batch.iter().map(|_| vec![0.0; h]).collect());
        }

        // Embeddings: word + position + token type 0, then layer norm.
        let mut x = vec![0f32; tokens * h];
        let mut row = 0;
        for ids in batch {
            for (pos, &id) in ids.iter().enumerate() {
                let dst = &mut x[row * h..(row + 1) * h];
                let w = &self.word[id as usize * h..(id as usize + 1) * h];
                let p = &self.position[pos * h..(pos + 1) * h];
                for (((d, a), b), c) in dst.iter_mut().zip(w).zip(p).zip(&self.token_type) {
                    *d = a + b + c;
                }
                row += 1;
            }
        }
        par_rows(&mut x, h, |rows| vectorized(|| layer_norm_rows(rows, &self.embed_norm, self.eps)));

        for layer in &self.layers {
            // Self-attention.
            let mut qkv = matmul(&x, tokens, h, &layer.qkv)?;
            let mut ctx = vec![0f32; tokens * h];
            {
                let bias = &layer.qkv_bias;
                par_rows(&mut qkv, 3 * h, |rows| vectorized(|| add_bias_rows(rows, bias)));
                let mut slices: Vec<(&[f32], &mut [f32])> = Vec::with_capacity(lens.len());
                let (mut src, mut dst): (&[f32], &mut [f32]) = (&qkv, &mut ctx);
                for &len in &lens {
                    let (s, rest_s) = src.split_at(len * 3 * h);
                    let (d, rest_d) = dst.split_at_mut(len * h);
                    slices.push((s, d));
                    src = rest_s;
                    dst = rest_d;
                }
                let heads = self.heads;
                slices.into_par_iter().for_each(|(s, d)| vectorized(|| attention(s, d, h, heads)));
            }
            let mut a = matmul(&ctx, tokens, h, &layer.attn_out)?;
            par_rows_with(&mut a, &x, h, |rows, residual| {
                vectorized(|| {
                    add_bias_rows(rows, &layer.attn_out_bias);
                    add_rows(rows, residual);
                    layer_norm_rows(rows, &layer.attn_norm, self.eps);
                })
            });
            x = a;

            // Feed-forward.
            let mut up = matmul(&x, tokens, h, &layer.up)?;
            par_rows(&mut up, self.intermediate, |rows| {
                vectorized(|| {
                    add_bias_rows(rows, &layer.up_bias);
                    gelu(rows);
                })
            });
            let mut down = matmul(&up, tokens, self.intermediate, &layer.down)?;
            par_rows_with(&mut down, &x, h, |rows, residual| {
                vectorized(|| {
                    add_bias_rows(rows, &layer.down_bias);
                    add_rows(rows, residual);
                    layer_norm_rows(rows, &layer.out_norm, self.eps);
                })
            });
            x = down;
        }

        // Mean pooling over each sentence's tokens, then L2.
        let mut out = Vec::with_capacity(batch.len());
        let mut start = 0;
        for &len in &lens {
            let mut v = vec![0f32; h];
            for r in start..start + len {
                for (acc, val) in v.iter_mut().zip(&x[r * h..(r + 1) * h]) {
                    *acc += val;
                }
            }
            let count = len.max(1) as f32;
            v.iter_mut().for_each(|e| *e /= count);
            let norm = v.iter().map(|e| e * e).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|e| *e /= norm);
            out.push(v);
            start += len;
        }
        Ok(out)
    }
}

/// `x (rows, k) · w (k, n)` on the current rayon pool: through candle (gemm) in f32, or
/// on AMX tiles in bf16.
fn matmul(x: &[f32], rows: usize, k: usize, w: &Weight) -> candle_core::Result<Vec<f32>> {
    match w {
        Weight::F32(w) => {
            let t = Tensor::from_slice(x, (rows, k), &Device::Cpu)?;
            debug_assert_eq!(w.dtype(), DType::F32);
            t.matmul(w)?.flatten_all()?.to_vec1::<f32>()
        }
        Weight::Bf16(w) => {
            debug_assert_eq!(w.k(), k);
            Ok(jamuna_amx::matmul(x, rows, w))
        }
    }
}

/// Runs `f` over chunks of whole rows of `data` (rows of `width`) on the current pool.
fn par_rows(data: &mut [f32], width: usize, f: impl Fn(&mut [f32]) + Sync + Send) {
    data.par_chunks_mut(ROWS_PER_TASK * width).for_each(f);
}

/// [`par_rows`] with the matching rows of `other` (same width).
fn par_rows_with(data: &mut [f32], other: &[f32], width: usize, f: impl Fn(&mut [f32], &[f32]) + Sync + Send) {
    data.par_chunks_mut(ROWS_PER_TASK * width).zip(other.par_chunks(ROWS_PER_TASK * width)).for_each(|(d, o)| f(d, o));
}

#[inline(always)]
fn add_bias_rows(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (x, b) in row.iter_mut().zip(bias) {
            *x += b;
        }
    }
}

#[inline(always)]
fn add_rows(rows: &mut [f32], other: &[f32]) {
    for (x, o) in rows.iter_mut().zip(other) {
        *x += o;
    }
}

/// Layer norm of each row (width = `norm.gamma.len()`), in place.
#[inline(always)]
fn layer_norm_rows(rows: &mut [f32], norm: &Norm, eps: f32) {
    let width = norm.gamma.len();
    for row in rows.chunks_exact_mut(width) {
        let mean = sum(row) / width as f32;
        row.iter_mut().for_each(|x| *x -= mean);
        let var = dot(row, row) / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
            *x = *x * inv * g + b;
        }
    }
}

/// Exact GELU, `x · (1 + erf(x / √2)) / 2`, in place.
#[inline(always)]
fn gelu(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `erf` in `f32` without branches, so that it vectorises: the rational approximation
/// Eigen and XLA use (odd degree-13 numerator over even degree-8 denominator, on
/// `[-4, 4]`, where `erf` reaches ±1 in `f32`), within 2e-7 of the exact function.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_024e-6);
    p = p.mul_add(x2, -5.692_506_4e-5);
    p = p.mul_add(x2, -7.349_906_3e-4);
    p = p.mul_add(x2, -2.954_600_2e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    let p = x * p;
    let mut q = -1.456_607_2e-5_f32;
    q = q.mul_add(x2, -2.133_740_6e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329e-3);
    q = q.mul_add(x2, -1.426_474e-2);
    p / q
}

/// Multi-head self-attention for one sentence: `qkv` holds its rows of query, key and
/// value side by side (`3·hidden` wide), `ctx` receives the attended values (`hidden`).
#[inline(always)]
fn attention(qkv: &[f32], ctx: &mut [f32], hidden: usize, heads: usize) {
    let len = ctx.len() / hidden;
    let d = hidden / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let stride = 3 * hidden;
    let mut scores = vec![0f32; len];
    for head in 0..heads {
        let (qo, ko, vo) = (head * d, hidden + head * d, 2 * hidden + head * d);
        for i in 0..len {
            let q = &qkv[i * stride + qo..i * stride + qo + d];
            let mut max = f32::NEG_INFINITY;
            for (j, s) in scores.iter_mut().enumerate() {
                *s = dot(q, &qkv[j * stride + ko..j * stride + ko + d]) * scale;
                max = max.max(*s);
            }
            let mut total = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                total += *s;
            }
            let out = &mut ctx[i * hidden + head * d..i * hidden + (head + 1) * d];
            for (j, &s) in scores.iter().enumerate() {
                let w = s / total;
                for (o, v) in out.iter_mut().zip(&qkv[j * stride + vo..j * stride + vo + d]) {
                    *o += w * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf to double precision (Abramowitz–Stegun 7.1.28 is not enough; use the series
    /// and the continued fraction), as the reference for the `f32` approximation.
    fn erf_f64(x: f64) -> f64 {
        if x.abs() < 2.5 {
            // Maclaurin series: 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)).
            let mut term = x;
            let mut total = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                total += term / (2 * n + 1) as f64;
            }
            total * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc continued fraction (Lentz), accurate for |x| ≥ 2.5.
            let ax = x.abs();
            let mut f = 0.0;
            for k in (1..200).rev() {
                f = (k as f64 / 2.0) / (ax + f);
            }
            let erfc = (-ax * ax).exp() / std::f64::consts::PI.sqrt() / (ax + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn erf_matches_the_exact_function_to_f32_precision() {
        let mut worst: f64 = 0.0;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4; // -6 … 6
            let err = (erf(x) as f64 - erf_f64(x as f64)).abs();
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "worst error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert!(erf(10.0) <= 1.0 && erf(10.0) > 0.999_999);
        assert!(erf(-10.0) >= -1.0);
    }

    #[test]
    fn dot_and_sum_handle_remainders() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..37).map(|i| (i % 3) as f32).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), want);
        assert_eq!(sum(&a), (0..37).sum::<i32>() as f32);
    }

    #[test]
    fn attention_of_one_token_returns_its_value() {
        // One token attends only to itself: the context is its value, whatever the scores.
        let hidden = 4;
        let qkv = [1.0, 2.0, 3.0, 4.0, 0.5, 0.5, 0.5, 0.5, 9.0, 8.0, 7.0, 6.0];
        let mut ctx = [0f32; 4];
        attention(&qkv, &mut ctx, hidden, 2);
        assert_eq!(ctx, [9.0, 8.0, 7.0, 6.0]);
    }

    #[test]
    fn attention_weighs_values_by_softmax_of_scaled_scores() {
        // hidden 2, one head of width 2; two tokens.
        let hidden = 2;
        #[rustfmt::skip]
        let qkv = [
            1.0, 0.0,   1.0, 0.0,   10.0, 0.0,
            0.0, 1.0,   0.0, 2.0,   0.0, 20.0,
        ];
        let mut ctx = [0f32; 4];
        attention(&qkv, &mut ctx, hidden, 1);
        let s = 1.0 / 2f32.sqrt();
        // token 0: scores (1·s, 0); token 1: scores (0, 2·s).
        let w0 = (s).exp() / ((s).exp() + 1.0);
        let w1 = (2.0 * s).exp() / (1.0 + (2.0 * s).exp());
        let want = [10.0 * w0, 20.0 * (1.0 - w0), 10.0 * (1.0 - w1), 20.0 * w1];
        for (g, w) in ctx.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{ctx:?} vs {want:?}");
        }
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let norm = Norm { gamma: vec![2.0; 4], beta: vec![1.0; 4] };
        let mut rows = [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0];
        layer_norm_rows(&mut rows, &norm, 1e-12);
        let sd = 1.25f32.sqrt();
        let want = [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd].map(|z| 2.0 * z + 1.0);
        for (g, w) in rows[..4].iter().zip(want) {
            assert!((g - w).abs() < 1e-5);
        }
        assert!(rows[4..].iter().all(|&x| (x - 1.0).abs() < 1e-5));
    }
}
