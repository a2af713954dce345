//! Embedding throughput and latency, for `jamuna bench embed`.
//!
//! Two figures matter to the worker: how many sentences a second it embeds when messages
//! queue up (batches of [`BENCH_BATCH`] mixed-length sentences), and how long one message
//! waits for its embedding when they do not (single-sentence latency, p50 and p99).
//! These are printed, never asserted: timings depend on the machine.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::embed::{EmbedError, Embedder};

/// Sentences per batch in the throughput measure.
pub const BENCH_BATCH: usize = 64;

/// Most single-sentence calls timed for the latency measure.
const LATENCY_SAMPLES: usize = 200;

/// Figures from [`bench_embed`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedBenchReport {
    /// Sentences embedded in the throughput measure.
    pub sentences: usize,
    pub batch_size: usize,
    /// Mean words per sentence.
    pub mean_words: f64,
    /// Throughput over batches of `batch_size`.
    pub sentences_per_second: f64,
    /// Single-sentence calls timed.
    pub single_samples: usize,
    pub single_p50_ms: f64,
    pub single_p99_ms: f64,
    pub single_mean_ms: f64,
}

impl fmt::Display for EmbedBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "batches of {}: {:.1} sentences/s over {} sentences (mean {:.1} words)",
            self.batch_size, self.sentences_per_second, self.sentences, self.mean_words
        )?;
        write!(
            f,
            "single sentence: p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms over {} calls",
            self.single_p50_ms, self.single_p99_ms, self.single_mean_ms, self.single_samples
        )
    }
}

/// Measures `embedder` on `sentences` (one warm-up batch first): throughput over batches
/// of [`BENCH_BATCH`] in the given order, then the latency of embedding them one at a time
/// (the first 200).
pub fn bench_embed<S: AsRef<str>>(embedder: &Embedder, sentences: &[S]) -> Result<EmbedBenchReport, EmbedError> {
    let texts: Vec<&str> = sentences.iter().map(AsRef::as_ref).collect();
    if let Some(warm) = texts.chunks(BENCH_BATCH).next() {
        embedder.embed(warm)?;
    }
    let start = Instant::now();
    for batch in texts.chunks(BENCH_BATCH) {
        embedder.embed(batch)?;
    }
    let batch_time = start.elapsed();

    let mut single: Vec<Duration> = Vec::new();
    for text in texts.iter().take(LATENCY_SAMPLES) {
        let t = Instant::now();
        embedder.embed_one(text)?;
        single.push(t.elapsed());
    }
    single.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |q: f64| single.get(((single.len() as f64 * q).ceil() as usize).saturating_sub(1)).map_or(0.0, |d| ms(*d));
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    Ok(EmbedBenchReport {
        sentences: texts.len(),
        batch_size: BENCH_BATCH,
        mean_words: words as f64 / texts.len().max(1) as f64,
        sentences_per_second: texts.len() as f64 / batch_time.as_secs_f64().max(1e-9),
        single_samples: single.len(),
        single_p50_ms: pct(0.50),
        single_p99_ms: pct(0.99),
        single_mean_ms: single.iter().map(|d| ms(*d)).sum::<f64>() / single.len().max(1) as f64,
    })
}

/// `n` deterministic support-style sentences of mixed length (3 to about 60 words), for
/// benchmarking without a data set.
pub fn mixed_sentences(n: usize) -> Vec<String> {
    const OPENERS: [&str; 8] = [
        "Hi, I",
        "Hello there, I",
        "Why have I",
        "Can you tell me why I",
        "My card was declined and I",
        "Yesterday I",
        "I think I",
        "Please help, I",
    ];
    const MIDDLES: [&str; 8] = [
        "still have not received my new card",
        "was charged twice for the same purchase",
        "cannot log in to the app after the update",
        "want to change the address on my account",
        "need a refund for an order that never arrived",
        "see a pending transfer that has not gone through",
        "would like to know the exchange rate you use",
        "lost my phone and need to freeze everything",
    ];
    const TAILS: [&str; 4] = [
        "",
        "and I have been waiting for more than two weeks now",
        "which is really frustrating because I need it for a trip abroad next month and nobody answers",
        "so could you please check what happened, tell me what to do next, and whether there is a fee involved, because the last time this happened I was charged without any warning at all",
    ];
    (0..n)
        .map(|i| {
            let s = format!("{} {} {}", OPENERS[i % OPENERS.len()], MIDDLES[(i / 3) % MIDDLES.len()], TAILS[(i * 7 / 5) % TAILS.len()]);
            let s = s.trim_end().to_owned() + ".";
            if i % 11 == 0 { "Card not arrived.".to_owned() } else { s }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_sentences_vary_in_length() {
        let s = mixed_sentences(64);
        assert_eq!(s.len(), 64);
        let lens: Vec<usize> = s.iter().map(|x| x.split_whitespace().count()).collect();
        assert!(*lens.iter().min().unwrap() <= 3);
        assert!(*lens.iter().max().unwrap() >= 40);
    }
}
