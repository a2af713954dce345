//! Jamuna's AI worker: the part of the product that reads customers' messages on CPU.
//!
//! It turns text into meaning-preserving vectors and decides what a message is about, or
//! that it is about nothing the bot was taught, in which case a human takes over.
//!
//! - [`embed`]: a sentence encoder (all-MiniLM-L6-v2, BERT with candle on CPU) maps a
//!   text to a unit vector in 384 dimensions; similar meanings lie close together.
//!   The model is fetched at build time by `scripts/fetch-model.sh`, never at run time.
//! - [`intent`]: a tenant's labelled examples train an [`IntentModel`]: a softmax head on
//!   the frozen embeddings, with a calibrated confidence and a handoff threshold, both
//!   chosen from the training examples by hiding whole intents as stand-ins for the
//!   unknown. A prediction without an intent means "hand off to a human".
//! - [`chunk`]: knowledge-base articles are split into overlapping passages that fit the
//!   encoder, each keeping its byte position and heading, for retrieval.
//! - [`encoder`]: the chunker and the encoder together, as the read side's passage
//!   encoder: the knowledge-base vector projection stores what it computes.
//! - [`learn`]: the one way a tenant's model is trained (`kb train`, the worker and
//!   `eval` share it), and where trained models are cached.
//! - [`decision`]: the bot's [`decision::Decision`] about a message and the pure rules
//!   that reach it from scores (retrieval, canned phrases, the intent model's say);
//!   [`answer`] computes those scores with the encoder and the vector index.
//! - [`live`]: each tenant's examples, intent answers and model in use, folded from the
//!   knowledge-base events the worker hands it; [`dialogue`]: follow-ups read in the
//!   conversation's context, one clarifying question before a handoff.
//! - [`retrain`]: trains the intent models admins ask for, in the background, on the
//!   replica that holds the knowledge base's partition.
//! - [`worker`]: follows the event log and answers customers (see below).
//! - [`router`]: gives conversations waiting for a human to the online agents of their
//!   team in turn, within a capacity, and takes them from agents offline too long.
//! - [`eval`]: trains exactly as the product does and scores a held-out set
//!   (per-intent precision, recall and F1; out-of-scope recall and precision).
//! - `bench` (cargo feature `bench`, which `jamuna bench` enables): throughput and latency
//!   of the encoder, printed and never asserted.
//!
//! ```no_run
//! use std::path::Path;
//! use jamuna_ai_worker::{Embedder, Example, IntentModel, TrainConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let embedder = Embedder::load(Path::new("models/all-MiniLM-L6-v2"))?;
//! let example = |text: &str, intent: &str| Example { text: text.into(), intent: intent.into() };
//! let examples = [
//!     example("My card hasn't arrived", "card_arrival"),
//!     example("When will my card come?", "card_arrival"),
//!     example("I lost my card", "lost_card"),
//!     example("Someone stole my card", "lost_card"),
//!     example("How do I change my PIN?", "change_pin"),
//!     example("I want a new PIN", "change_pin"),
//! ];
//! let model = IntentModel::train(&embedder, &examples, &TrainConfig::default())?;
//! let stored = serde_json::to_string(&model)?; // a tenant's model, kept for later
//! let prediction = &model.classify(&embedder, &["where is my card?"])?[0];
//! match &prediction.intent {
//!     Some(intent) => println!("{intent} (confidence {:.2})", prediction.confidence),
//!     None => println!("hand off to a human"),
//! }
//! # let _ = stored;
//! # Ok(())
//! # }
//! ```
//!
//! **What depends on the event log.** Only [`worker`] does: it subscribes to the log
//! (`jamuna_commands::EventLog`), catches up on partitions it takes over, keeps
//! per-partition checkpoints, and sends `AnswerMessage` / `RequestHandoff` through the
//! command handler. It hands knowledge-base events to [`live`] (which folds them, as
//! data, into each tenant's examples, answers and model) and to the knowledge-base vector
//! projection that [`answer`] searches, and hands each customer message to
//! [`answer::Answerer`] ([`dialogue`] adds the conversation's context from the session
//! store). None of those reads the log or sends a command. [`embed`], [`intent`],
//! [`chunk`], [`decision`], [`learn`] and [`eval`] know neither the log nor the read
//! models: they turn texts and examples into vectors, models and decisions ([`decision`]
//! takes the index's hits as plain data; [`learn`] caches models in files). [`encoder`]
//! implements the vector projection's `PassageEncoder` port and knows no more of it.
//! [`embed`] runs the encoder through [`bert`], our own forward pass of the BERT model
//! (no padding, fused query/key/value, vectorised GELU; the matrix products in gemm).
//!
//! Everything below the worker is synchronous and CPU-bound except [`AsyncEmbedder`],
//! which moves the work to tokio's blocking pool, and the answerer's searches of the
//! vector index and the session store.

#![forbid(unsafe_code)]

pub mod answer;
#[cfg(feature = "bench")]
pub mod bench;
pub mod bert;
pub mod chunk;
pub mod decision;
pub mod dialogue;
pub mod embed;
pub mod encoder;
pub mod eval;
mod head;
pub mod intent;
pub mod learn;
pub mod live;
pub mod retrain;
pub mod router;
pub mod simd;
pub mod worker;

#[cfg(feature = "bench")]
pub use bench::{EmbedBenchReport, bench_embed};
pub use bert::Precision;
pub use chunk::{ChunkConfig, Passage, split_passages};
pub use embed::{AsyncEmbedder, EmbedError, Embedder};
pub use eval::{EvalError, EvalReport};
pub use intent::{Example, IntentError, IntentModel, Prediction, TrainConfig};
