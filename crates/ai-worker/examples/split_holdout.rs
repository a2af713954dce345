//! Writes the held-out protocol's files for `jamuna eval`.
//!
//! ```text
//! cargo run --release -p jamuna-ai-worker --example split_holdout -- DATA.csv OOS_INTENTS SEED OUT_DIR [TAUGHT_SHARE]
//! ```
//!
//! Splits DATA.csv (`text,category`) with `eval::split_holdout` (10% of each intent's
//! rows, plus every row of OOS_INTENTS whole intents relabelled `oos`, go to the test
//! set; the same split as `eval_holdout` for the same arguments) and writes
//! `OUT_DIR/train.csv` and `OUT_DIR/test.csv`.
//!
//! With TAUGHT_SHARE (0–1), it also writes the protocol of a tenant who marked some
//! off-topic questions "hand these to a person": of the held-out intents, the first half
//! (in the order `split_holdout` drew them) lend TAUGHT_SHARE of their rows to training,
//! labelled `oos` (`jamuna eval --oos-label oos` trains them as the reserved
//! `out_of_scope` intent):
//!
//! - `taught/train.csv`: `train.csv` plus those rows;
//! - `taught/test-seen.csv`: the in-scope test rows and the rest of those intents' rows;
//! - `taught/test-unseen.csv`: the in-scope test rows and every row of the other half.
//!
//! Training on `train.csv` instead of `taught/train.csv` against the same two test files
//! gives the figures without the taught examples.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use jamuna_ai_worker::eval;
use jamuna_ai_worker::intent::Example;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: split_holdout DATA.csv OOS_INTENTS SEED OUT_DIR [TAUGHT_SHARE]";
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().ok_or(usage)?);
    let oos_intents: usize = args.next().ok_or(usage)?.parse()?;
    let seed: u64 = args.next().ok_or(usage)?.parse()?;
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let taught_share: Option<f64> = args.next().map(|s| s.parse()).transpose()?;
    let examples = eval::read_examples(&data)?;
    let split = eval::split_holdout(&examples, 0.1, oos_intents, "oos", seed);
    std::fs::create_dir_all(&out)?;
    eval::write_examples(&out.join("train.csv"), &split.train)?;
    eval::write_examples(&out.join("test.csv"), &split.test)?;
    println!(
        "train {}, test {} ({} out of scope from intents {:?})",
        split.train.len(),
        split.test.len(),
        split.test.iter().filter(|e| e.intent == "oos").count(),
        split.oos_intents
    );
    let Some(share) = taught_share.filter(|s| (0.0..=1.0).contains(s)) else {
        return Ok(());
    };
    // The held-out rows' own intents, by text (the split relabels them `oos`).
    let intent_of: HashMap<&str, &str> = examples.iter().map(|e| (e.text.as_str(), e.intent.as_str())).collect();
    let mut seen: Vec<&String> = split.oos_intents.iter().collect();
    seen.shuffle(&mut StdRng::seed_from_u64(seed));
    let seen: BTreeSet<&str> = seen.iter().take(split.oos_intents.len() / 2).map(|s| s.as_str()).collect();
    let (in_scope, oos): (Vec<&Example>, Vec<&Example>) = split.test.iter().partition(|e| e.intent != "oos");
    let (mut of_seen, of_unseen): (Vec<&Example>, Vec<&Example>) =
        oos.into_iter().partition(|e| intent_of.get(e.text.as_str()).is_some_and(|i| seen.contains(i)));
    of_seen.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_add(1)));
    let n = (of_seen.len() as f64 * share).round() as usize;
    let (taught, rest) = of_seen.split_at(n);
    let dir = out.join("taught");
    std::fs::create_dir_all(&dir)?;
    let owned = |rows: &[&Example]| rows.iter().map(|e| (*e).clone()).collect::<Vec<_>>();
    eval::write_examples(&dir.join("train.csv"), &[split.train.clone(), owned(taught)].concat())?;
    eval::write_examples(&dir.join("test-seen.csv"), &[owned(&in_scope), owned(rest)].concat())?;
    eval::write_examples(&dir.join("test-unseen.csv"), &[owned(&in_scope), owned(&of_unseen)].concat())?;
    println!(
        "taught: {} rows of {:?} in training; {} of theirs and {} of the other intents in the tests",
        taught.len(),
        seen,
        rest.len(),
        of_unseen.len()
    );
    Ok(())
}
