//! Background training over a real SQLite log, the real domain and the real
//! encoder: a training that keeps failing is given up and recorded as
//! `IntentTrainingFailed`, and a new request is trained once training works.
//!
//! Training is made to fail through the retrainer's [`Train`] port: the
//! trainer below fails a set number of times with a real training error,
//! then trains with [`learn::train_async`] as the product does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jamuna_ai_worker::eval::read_examples;
use jamuna_ai_worker::learn::{self, Trained};
use jamuna_ai_worker::live::LiveIntents;
use jamuna_ai_worker::retrain::{ATTEMPTS, Retrainer, Train};
use jamuna_ai_worker::worker::partition_units;
use jamuna_ai_worker::{AsyncEmbedder, EmbedError, Example, IntentError};
use jamuna_commands::handler::CommandContext;
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::{CommandHandler, EventLog, Sealer, seal};
use jamuna_domain::knowledge_base::{KnowledgeBase, KnowledgeBaseCommand, KnowledgeBaseEvent, LabelledExample, ModelState};
use jamuna_domain::{StreamId, TenantId};
use jamuna_projections::work_share::WorkShare;

use crate::{fixture, shared_embedder};

/// How long the retrainer waits after a failure in these tests.
const RETRY: Duration = Duration::from_millis(50);

const BROKEN: &str = "embedding task failed: the encoder's thread pool is gone";

/// Fails the next `failing` trainings, then trains as the product does; with
/// `not_finite`, the model it trains is measured as NaN (the domain refuses it).
struct Flaky {
    embedder: AsyncEmbedder,
    failing: AtomicU32,
    not_finite: AtomicBool,
    calls: AtomicU32,
}

#[async_trait]
impl Train for Flaky {
    async fn train(&self, examples: Vec<Example>) -> Result<Trained, IntentError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(IntentError::Embed(EmbedError::Task("the encoder's thread pool is gone".into())));
        }
        let mut trained = learn::train_async(&self.embedder, examples).await?;
        if self.not_finite.load(Ordering::SeqCst) {
            trained.seconds = f64::NAN;
        }
        Ok(trained)
    }
}

impl Flaky {
    fn new(failing: u32, not_finite: bool) -> Arc<Self> {
        Arc::new(Self {
            embedder: AsyncEmbedder::new(shared_embedder()),
            failing: AtomicU32::new(failing),
            not_finite: AtomicBool::new(not_finite),
            calls: AtomicU32::new(0),
        })
    }
    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A knowledge base in a fresh SQLite log, with the labelled examples of the
/// fixture, and a retrainer that is handed its events as the worker would.
struct Kb {
    commands: Arc<CommandHandler>,
    stream: StreamId,
    ctx: CommandContext,
    follow: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Kb {
    fn drop(&mut self) {
        self.follow.abort();
    }
}

impl Kb {
    async fn new(train: Arc<dyn Train>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(dir.path().join("events.db")).await.unwrap());
        let commands = Arc::new(CommandHandler::new(log.clone(), Sealer::new(Arc::new(MemoryKeyStore::default()))));
        let tenant = TenantId::parse("acme").unwrap();
        let stream = StreamId::knowledge_base(&tenant);
        let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
        let examples: Vec<LabelledExample> = read_examples(&fixture("intents_train.csv"))
            .unwrap()
            .into_iter()
            .map(|e| LabelledExample { text: e.text, intent: e.intent })
            .collect();
        commands
            .execute::<KnowledgeBase>(&stream, &KnowledgeBaseCommand::ImportExamples { examples, answers: vec![] }, &ctx)
            .await
            .unwrap();

        let intents = Arc::new(LiveIntents::new(AsyncEmbedder::new(shared_embedder())));
        let share = Arc::new(WorkShare::everything(partition_units()));
        let retrainer = Retrainer::start_with(commands.clone(), intents, share, train, RETRY);
        let follow = tokio::spawn({
            let (log, stream) = (log.clone(), stream.clone());
            async move {
                let mut seen = 0;
                loop {
                    for recorded in log.read_stream(&stream, seen).await.unwrap() {
                        seen = recorded.version;
                        retrainer.observe(&recorded);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        Self { commands, stream, ctx, follow, _dir: dir }
    }

    async fn request(&self) {
        let done = self.commands.execute::<KnowledgeBase>(&self.stream, &KnowledgeBaseCommand::RequestIntentTraining, &self.ctx).await;
        assert!(matches!(&done.unwrap().events[..], [e] if matches!(e.data, KnowledgeBaseEvent::IntentTrainingRequested { .. })));
    }

    async fn events(&self) -> Vec<KnowledgeBaseEvent> {
        let recorded = self.commands.log().read_stream(&self.stream, 0).await.unwrap();
        recorded.iter().map(|r| seal::decode::<KnowledgeBaseEvent>(r).unwrap()).collect()
    }

    async fn state(&self) -> Arc<KnowledgeBase> {
        self.commands.load::<KnowledgeBase>(&self.stream).await.unwrap()
    }

    /// Waits until the knowledge base leaves `training`, and returns it.
    async fn settled(&self) -> Arc<KnowledgeBase> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let kb = self.state().await;
            if kb.model_state() != ModelState::Training {
                return kb;
            }
            assert!(Instant::now() < deadline, "still training after 2 minutes: {:?}", self.events().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn failures(events: &[KnowledgeBaseEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            KnowledgeBaseEvent::IntentTrainingFailed { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

fn models(events: &[KnowledgeBaseEvent]) -> usize {
    events.iter().filter(|e| matches!(e, KnowledgeBaseEvent::IntentModelTrained { .. })).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_that_keeps_failing_is_given_up_and_a_new_request_is_trained() {
    let trainer = Flaky::new(ATTEMPTS, false);
    let kb = Kb::new(trainer.clone()).await;
    kb.request().await;

    let state = kb.settled().await;
    assert_eq!(state.model_state(), ModelState::Failed);
    let failure = state.training_failure().expect("the failure is known");
    assert_eq!(failure.reason, BROKEN);
    assert_eq!(trainer.calls(), ATTEMPTS, "tried {ATTEMPTS} times, then gave up");
    let events = kb.events().await;
    assert_eq!((failures(&events), models(&events)), (vec![BROKEN], 0), "{events:?}");
    let KnowledgeBaseEvent::IntentTrainingFailed { examples_fingerprint, .. } = events.last().unwrap() else { panic!("{events:?}") };
    assert_eq!(*examples_fingerprint, state.examples_fingerprint());
    // Given up: it does not try again by itself.
    tokio::time::sleep(RETRY * 10 + Duration::from_millis(500)).await;
    assert_eq!(trainer.calls(), ATTEMPTS);

    // Asked again, it trains: a failure short of the attempts is tried again.
    trainer.failing.store(ATTEMPTS - 1, Ordering::SeqCst);
    kb.request().await;
    let state = kb.settled().await;
    assert_eq!(state.model_state(), ModelState::Trained, "{:?}", kb.events().await);
    assert_eq!(state.training_failure(), None);
    assert_eq!(state.model_version(), 1);
    assert_eq!(trainer.calls(), 2 * ATTEMPTS);
    let events = kb.events().await;
    assert_eq!((failures(&events).len(), models(&events)), (1, 1), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_the_domain_refuses_is_recorded_as_failed_at_once() {
    let trainer = Flaky::new(0, true);
    let kb = Kb::new(trainer.clone()).await;
    kb.request().await;

    let state = kb.settled().await;
    assert_eq!(state.model_state(), ModelState::Failed, "{:?}", kb.events().await);
    let reason = &state.training_failure().expect("the failure is known").reason;
    assert_eq!(reason, "the trained model was refused: a trained model's measures must be finite numbers");
    assert_eq!(trainer.calls(), 1, "the same examples would train the same model");
    assert_eq!(models(&kb.events().await), 0);
}
