//! `jamuna kb import FILE --tenant T [--answers FILE]`: a Markdown article, a
//! CSV of question,answer pairs, or a JSON list of them, or labelled examples
//! (a `text,category` CSV, with an optional `category,answer` CSV), into a
//! tenant's knowledge base — all of it in one append, or nothing (errors name
//! their line).
//!
//! `jamuna kb train --tenant T`: trains the tenant's intent model on its
//! examples (the same code the AI worker and `jamuna eval` use), reports the
//! held-out figures and the trade-off of the handoff threshold (per in-scope
//! retention: the threshold, in-scope accuracy and out-of-scope recall; the
//! live bot applies the tenant's `handoff_retention`), records
//! `IntentModelTrained`; the model itself goes to
//! `<data_dir>/intent-models`, where the worker of the same data directory
//! loads it (a worker elsewhere retrains it from the log).

use crate::config::Config;
use anyhow::{Context, Result, bail};
use jamuna_ai_worker::learn::ModelCache;
use jamuna_commands::handler::CommandContext;
use jamuna_domain::knowledge_base::import::{self, Format};
use jamuna_domain::knowledge_base::{KnowledgeBase, KnowledgeBaseCommand, KnowledgeBaseEvent, examples_fingerprint};
use jamuna_domain::{StreamId, TenantId};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum KbCommand {
    /// Import articles from a file (.md, .csv with question,answer, or .json),
    /// or labelled examples (.csv with text,category).
    Import {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        /// The answers to intents: a CSV with category,answer (with examples, or alone).
        #[arg(long)]
        answers: Option<PathBuf>,
    },
    /// Train the tenant's intent model on its labelled examples.
    Train {
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(command: KbCommand, config: &Config) -> Result<()> {
    match command {
        KbCommand::Import { file, tenant, answers } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let kind = Format::detect(&file.display().to_string()).filter(|f| *f == Format::Csv).and_then(|_| import::csv_kind(&text));
            match kind {
                Some(import::CsvKind::Examples | import::CsvKind::Answers) => {
                    import_examples(config, &file, &text, answers.as_deref(), &tenant).await
                }
                _ if answers.is_some() => bail!("--answers goes with a CSV of labelled examples (text,category)"),
                _ => import_file(config, &file, &tenant).await,
            }
        }
        KbCommand::Train { tenant } => train(config, &tenant).await,
    }
}

/// Labelled examples and/or answers, in one append.
async fn import_examples(
    config: &Config,
    file: &std::path::Path,
    text: &str,
    answers: Option<&std::path::Path>,
    tenant: &str,
) -> Result<()> {
    let tenant = TenantId::parse(tenant).context("--tenant")?;
    let name = file.display().to_string();
    let (mut examples, mut intent_answers) = (Vec::new(), Vec::new());
    match import::csv_kind(text) {
        Some(import::CsvKind::Answers) => {
            intent_answers = import::parse_answers(text).with_context(|| format!("{name} was not imported"))?
        }
        _ => examples = import::parse_examples(text).with_context(|| format!("{name} was not imported"))?,
    }
    if let Some(path) = answers {
        let answers_name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {answers_name}"))?;
        intent_answers.extend(import::parse_answers(&text).with_context(|| format!("{answers_name}: nothing was imported"))?);
    }
    let intents: std::collections::BTreeSet<&str> = examples.iter().map(|e| e.intent.as_str()).collect();
    let progress = indicatif::ProgressBar::new_spinner().with_message(format!(
        "importing {} examples of {} intents and {} answers from {name}",
        examples.len(),
        intents.len(),
        intent_answers.len()
    ));
    progress.enable_steady_tick(std::time::Duration::from_millis(100));
    let handler = crate::ports::write_side(config).await?.commands;
    let stream = StreamId::knowledge_base(&tenant);
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    let total = (examples.len(), intent_answers.len());
    let command = KnowledgeBaseCommand::ImportExamples { examples, answers: intent_answers };
    let done =
        handler.execute::<KnowledgeBase>(&stream, &command, &ctx).await.map_err(|e| anyhow::anyhow!("{name} was not imported: {e}"))?;
    progress.finish_and_clear();
    let (mut added, mut answered, batches) = (0, 0, done.events.len());
    for e in &done.events {
        match &e.data {
            KnowledgeBaseEvent::ExamplesAdded { examples } => added += examples.len(),
            KnowledgeBaseEvent::IntentAnswerSet { .. } => answered += 1,
            _ => {}
        }
    }
    println!(
        "{name}: {added} examples added ({} already known), {answered} answers set ({} unchanged), in {batches} events",
        total.0 - added,
        total.1 - answered
    );
    if added > 0 {
        println!("now train the intent model: jamuna kb train --tenant {tenant}");
    }
    Ok(())
}

/// Trains on the examples in the log and records the model.
async fn train(config: &Config, tenant: &str) -> Result<()> {
    let tenant = TenantId::parse(tenant).context("--tenant")?;
    let handler = crate::ports::write_side(config).await?.commands;
    let stream = StreamId::knowledge_base(&tenant);
    let mut held = std::collections::HashSet::new();
    for recorded in handler.log().read_stream(&stream, 0).await.map_err(|e| anyhow::anyhow!("cannot read the knowledge base: {e}"))? {
        match jamuna_commands::seal::decode::<KnowledgeBaseEvent>(&recorded).context("cannot read a knowledge-base event")? {
            KnowledgeBaseEvent::ExamplesAdded { examples } => held.extend(examples),
            KnowledgeBaseEvent::ExamplesRemoved { examples } => examples.iter().for_each(|e| {
                held.remove(e);
            }),
            _ => {}
        }
    }
    if held.is_empty() {
        bail!("tenant {tenant} has no labelled examples: import a text,category CSV with `jamuna kb import FILE --tenant {tenant}`");
    }
    let fingerprint = examples_fingerprint(&held);
    let examples = jamuna_ai_worker::learn::canonical(&held);
    let dir = config.model_dir.clone();
    let model = config.model.clone();
    let bar = indicatif::ProgressBar::new(examples.len() as u64).with_message("embedding examples");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} ({eta})")
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    let progress = bar.clone();
    let trained = tokio::task::spawn_blocking(move || {
        let embedder = crate::ports::embedder(&dir, &model)?;
        jamuna_ai_worker::learn::train(&embedder, &examples, &mut |done, total| {
            progress.set_position(done as u64);
            if done == total {
                progress.set_message("fitting and calibrating");
            }
        })
        .context("training failed")
    })
    .await??;
    bar.finish_and_clear();
    let record = trained.record(fingerprint.clone());
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    let done = handler
        .execute::<KnowledgeBase>(&stream, &KnowledgeBaseCommand::RecordIntentModel { trained: record.clone() }, &ctx)
        .await
        .map_err(|e| anyhow::anyhow!("the model was not recorded: {e}"))?;
    let version = done.events.iter().find_map(|e| match &e.data {
        KnowledgeBaseEvent::IntentModelTrained { version, .. } => Some(*version),
        _ => None,
    });
    let Some(version) = version else { bail!("the model was not recorded") };
    let cache = ModelCache::in_data_dir(&config.data_dir);
    let path = cache
        .store(&tenant, version, &fingerprint, &trained.model)
        .with_context(|| format!("cannot write the model under {}", cache.dir().display()))?;
    println!("intent model v{version} of {tenant}: {} examples, {} intents, {:.1}s", record.examples, record.intents, record.seconds);
    println!("held-out accuracy {:.4} (never handing off)", record.held_out_accuracy);
    let retention = record.retention.unwrap_or(jamuna_ai_worker::intent::DEFAULT_RETENTION);
    println!(
        "default threshold {:.3}, keeping {:.0}% of answerable questions: in-scope accuracy {:.4}, out-of-scope recall {:.4} ({:.1}% of unknown questions answered)",
        record.threshold,
        retention * 100.0,
        record.in_scope_accuracy,
        record.oos_recall,
        (1.0 - record.oos_recall) * 100.0
    );
    let rows = trade_off(&trained.model);
    if rows.is_empty() {
        println!("no trade-off: too few intents to hide some during calibration, so the bot never hands off on the intent model");
    } else {
        println!(
            "{:>9}  {:>9}  {:>12}  {:>10}   (held out; set per tenant: handoff_retention)",
            "retention", "threshold", "in-scope acc", "oos recall"
        );
        for r in &rows {
            println!("{:>8.1}%  {:>9.3}  {:>12.4}  {:>10.4}", r.0 * 100.0, r.1.threshold, r.1.in_scope_accuracy, r.1.oos_recall);
        }
    }
    println!("saved to {}", path.display());
    let trade: Vec<_> = rows
        .iter()
        .map(|(r, p)| serde_json::json!({"retention": (f64::from(*r) * 1e6).round() / 1e6, "kept": p.in_scope_retention, "threshold": p.threshold, "in_scope_accuracy": p.in_scope_accuracy, "oos_recall": p.oos_recall}))
        .collect();
    println!(
        "{}",
        serde_json::json!({"version": version, "examples": record.examples, "intents": record.intents, "threshold": record.threshold, "retention": record.retention.map(|r| (f64::from(r) * 1e6).round() / 1e6), "held_out_accuracy": record.held_out_accuracy, "in_scope_accuracy": record.in_scope_accuracy, "oos_recall": record.oos_recall, "trade_off": trade, "seconds": record.seconds})
    );
    Ok(())
}

/// The retentions `kb train` reports the trade-off at.
const TRADE_OFF_RETENTIONS: [f32; 4] = [0.85, 0.90, 0.95, 0.98];

/// (retention, the held-out operating point of its threshold) at each of
/// [`TRADE_OFF_RETENTIONS`]; empty when the model has no curve.
fn trade_off(model: &jamuna_ai_worker::IntentModel) -> Vec<(f32, jamuna_ai_worker::intent::OperatingPoint)> {
    let curve = &model.calibration().curve;
    TRADE_OFF_RETENTIONS.iter().filter_map(|&r| Some((r, jamuna_ai_worker::intent::point_for_retention(curve, r)?))).collect()
}

async fn import_file(config: &Config, file: &std::path::Path, tenant: &str) -> Result<()> {
    let tenant = TenantId::parse(tenant).context("--tenant")?;
    let name = file.display().to_string();
    let Some(format) = Format::detect(&name) else { bail!("{name}: use a .md, .csv or .json file") };
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
    let drafts =
        import::parse(format, &text, file.file_name().and_then(|n| n.to_str())).with_context(|| format!("{name} was not imported"))?;
    let total = drafts.len();
    let progress = indicatif::ProgressBar::new_spinner().with_message(format!("importing {total} articles from {name}"));
    progress.enable_steady_tick(std::time::Duration::from_millis(100));
    let handler = crate::ports::write_side(config).await?.commands;
    let stream = StreamId::knowledge_base(&tenant);
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    let before = handler.load::<KnowledgeBase>(&stream).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let existing = drafts.iter().filter(|d| before.contains(&d.id)).count();
    let done = handler
        .execute::<KnowledgeBase>(&stream, &KnowledgeBaseCommand::Import { tenant, articles: drafts }, &ctx)
        .await
        .map_err(|e| anyhow::anyhow!("{name} was not imported: {e}"))?;
    let changed = done.events.len();
    let added = total - existing;
    progress.finish_and_clear();
    println!("{name}: {added} added, {} updated, {} unchanged", changed.saturating_sub(added), total - changed);
    Ok(())
}
