//! `jamuna bench answer`: end-to-end bot latency in the embedded mode — from a
//! customer's message appended to the log to the bot's answer (or handoff)
//! appended after it, p50/p99.
//!
//! It builds a fresh data directory with the product's own wiring: the SQLite
//! log, the demo tenant and knowledge base (as `serve --dev` seeds them), a
//! labelled-example set (BANKING77-style `text,category` CSV, default the
//! ai-worker's small fixture) with an answer per intent, a model trained and
//! recorded as `kb train` does, and the AI worker following the log. Then one
//! customer at a time writes in a new conversation (half of the messages are
//! examples' texts, half other questions), and each answer's arrival is timed
//! on a subscription to the log.

use super::Latencies;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use jamuna_ai_worker::learn::{self, ModelCache};
use jamuna_commands::handler::{CommandContext, CommandHandler};
use jamuna_domain::conversation::{Author, Channel, Conversation, ConversationCommand};
use jamuna_domain::knowledge_base::{KnowledgeBase, KnowledgeBaseCommand, LabelledExample, examples_fingerprint};
use jamuna_domain::{ConversationId, MessageText, StreamId, TenantId, UserId};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Messages to time (one conversation each).
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Labelled examples (`text,category` CSV); default: the ai-worker's fixture.
    #[arg(long)]
    examples: Option<PathBuf>,
    /// Keep the data directory here instead of a temporary one. (It takes the
    /// place of the global `--data-dir` in this command: same id, same flag.)
    #[arg(id = "data-dir", long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

const FIXTURE: &str = include_str!("../../crates/ai-worker/tests/fixtures/intents_train.csv");

/// Questions that are not examples: some in the demo articles, some out of scope.
const OTHER: &[&str] = &[
    "How long does a transfer to another bank take?",
    "Which exchange rate do you use on weekends?",
    "I lost my card, what do I do?",
    "How can I top up with Apple Pay?",
    "Can I view my PIN in the app?",
    "What's the weather like in Lisbon?",
    "Do you sell mortgages for boats?",
    "hello",
];

/// Gives `tenant` the labelled `examples` with one answer per intent and a
/// model trained on them and recorded, as `kb import` and `kb train` do (the
/// model is also stored in the data directory's cache, so a worker started
/// on it does not train again). The intents, in order.
pub(super) async fn train_tenant(
    config: &Config,
    commands: &CommandHandler,
    tenant: &TenantId,
    examples: &[LabelledExample],
) -> Result<BTreeSet<String>> {
    let intents: BTreeSet<String> = examples.iter().map(|e| e.intent.clone()).collect();
    let answers: Vec<(String, String)> =
        intents.iter().map(|i| (i.clone(), format!("Here is how we help with {}.", i.replace('_', " ")))).collect();
    let kb = StreamId::knowledge_base(tenant);
    let ctx = || CommandContext::new(tenant.clone(), chrono::Utc::now());
    commands
        .execute::<KnowledgeBase>(&kb, &KnowledgeBaseCommand::ImportExamples { examples: examples.to_vec(), answers }, &ctx())
        .await
        .map_err(|e| anyhow::anyhow!("cannot import the examples: {e}"))?;
    println!("training on {} examples of {} intents…", examples.len(), intents.len());
    let model_dir = config.model_dir.clone();
    let model = config.model.clone();
    let canonical = learn::canonical(examples);
    let trained = tokio::task::spawn_blocking(move || -> Result<_> {
        let embedder = crate::ports::embedder(&model_dir, &model)?;
        Ok(learn::train(&embedder, &canonical, &mut |_, _| {})?)
    })
    .await??;
    let fingerprint = examples_fingerprint(examples);
    let record = trained.record(fingerprint.clone());
    commands
        .execute::<KnowledgeBase>(&kb, &KnowledgeBaseCommand::RecordIntentModel { trained: record.clone() }, &ctx())
        .await
        .map_err(|e| anyhow::anyhow!("cannot record the model: {e}"))?;
    ModelCache::in_data_dir(&config.data_dir).store(tenant, 1, &fingerprint, &trained.model)?;
    println!("trained in {:.1}s: threshold {:.3}, held-out accuracy {:.4}", record.seconds, record.threshold, record.held_out_accuracy);
    Ok(intents)
}

pub async fn run(args: Args, config: &Config) -> Result<()> {
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&data_dir)?;
    let mut config = config.clone();
    config.data_dir = data_dir.clone();
    config.event_log.url = None;
    config.mongodb.url = None;
    config.redis.url = None;
    config.qdrant.url = None;

    let write = crate::ports::write_side(&config).await?;
    let commands = write.commands.clone();
    crate::roles::gateway::seed_demo(&config, &commands).await.context("cannot seed the demo tenant")?;
    let tenant = TenantId::parse("demo")?;

    let text = match &args.examples {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => FIXTURE.to_owned(),
    };
    let examples = jamuna_domain::knowledge_base::import::parse_examples(&text).context("the examples were not read")?;
    let intents = train_tenant(&config, &commands, &tenant, &examples).await?;
    let ctx = || CommandContext::new(tenant.clone(), chrono::Utc::now());

    // The worker, as `serve` runs it.
    let worker = crate::roles::ai_worker::worker(&config, commands.clone()).await?;
    let answerer = worker.answerer.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run_until(write.log.clone(), stop_rx));
    let ready = Instant::now();
    while answerer.intent_model_version(&tenant) < 1 || answerer.passages(&tenant).await.unwrap_or(0) == 0 {
        if ready.elapsed() > Duration::from_secs(600) {
            bail!("the worker did not load the model and the articles in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let messages: Vec<String> = (0..args.messages)
        .map(|i| if i % 2 == 0 { examples[(i * 7919) % examples.len()].text.clone() } else { OTHER[(i / 2) % OTHER.len()].to_owned() })
        .collect();
    let mut sub = write.log.subscribe_all(write.log.head().await?).await?;
    let mut latencies = Latencies::new();
    let (mut answered, mut handed_off, mut by_intent) = (0usize, 0usize, 0usize);
    let customer = UserId::parse("bench-customer")?;
    for (i, text) in messages.iter().enumerate() {
        let id = ConversationId::parse(format!("bench-{i}"))?;
        let stream = StreamId::conversation(&tenant, &id);
        let start =
            ConversationCommand::Start { tenant: tenant.clone(), conversation_id: id, customer: customer.clone(), channel: Channel::Web };
        commands.execute::<Conversation>(&stream, &start, &ctx()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let post = ConversationCommand::PostMessage {
            author: Author::Customer,
            text: Some(MessageText::parse(text)?),
            client_message_id: None,
            attachments: vec![],
        };
        let t0 = Instant::now();
        commands.execute::<Conversation>(&stream, &post, &ctx()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), sub.next()).await.context("no answer within 30 s")?;
            let Some(recorded) = next else { bail!("the log subscription ended") };
            let recorded = recorded?;
            if recorded.stream != stream {
                continue;
            }
            match recorded.event_type.as_str() {
                "BotAnswered" => {
                    answered += 1;
                    let event = commands.sealer().open::<jamuna_domain::conversation::ConversationEvent>(&recorded).await?;
                    if let jamuna_domain::conversation::ConversationEvent::BotAnswered { intent: Some(i), sources, .. } = &event.data
                        && sources.is_empty()
                        && intents.contains(i)
                    {
                        by_intent += 1;
                    }
                }
                "HandoffRequested" => handed_off += 1,
                _ => continue,
            }
            latencies.record(t0.elapsed());
            break;
        }
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    println!(
        "{} messages: {answered} answered ({by_intent} from an intent's answer), {handed_off} handed off; message appended → answer appended: p50 {:.2} ms, p99 {:.2} ms (max {:.2} ms), {} threads",
        latencies.count(),
        latencies.ms(0.5),
        latencies.ms(0.99),
        latencies.ms(1.0),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{}",
        serde_json::json!({"messages": latencies.count(), "answered": answered, "intent_answers": by_intent, "handoffs": handed_off, "p50_ms": latencies.ms(0.5), "p99_ms": latencies.ms(0.99), "examples": examples.len(), "intents": intents.len()})
    );
    Ok(())
}
