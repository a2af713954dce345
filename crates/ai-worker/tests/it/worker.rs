//! The worker over a real SQLite log: a stored event it cannot decode does
//! not stop it answering the messages after it.

use std::sync::Arc;
use std::time::Duration;

use jamuna_ai_worker::AsyncEmbedder;
use jamuna_ai_worker::answer::{AnswerConfig, Answerer};
use jamuna_ai_worker::worker::{Checkpoint, Worker, partition_units};
use jamuna_commands::handler::CommandContext;
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::log::sqlite::{SqliteLog, append_undecodable};
use jamuna_commands::{CommandHandler, EventLog, Sealer};
use jamuna_domain::conversation::{Author, Channel, Conversation, ConversationCommand};
use jamuna_domain::{ConversationId, MessageText, StreamId, TenantId, UserId};
use jamuna_projections::work_share::WorkShare;

use crate::shared_embedder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_goes_on_after_a_stored_event_it_cannot_decode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(&path).await.unwrap());
    let commands = Arc::new(CommandHandler::new(log.clone(), Sealer::new(Arc::new(MemoryKeyStore::default()))));
    let bad = append_undecodable(&path).unwrap();

    let tenant = TenantId::parse("acme").unwrap();
    let stream = StreamId::conversation(&tenant, &ConversationId::parse("c1").unwrap());
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    let start = ConversationCommand::Start {
        tenant: tenant.clone(),
        conversation_id: ConversationId::parse("c1").unwrap(),
        customer: UserId::parse("u1").unwrap(),
        channel: Channel::Web,
    };
    commands.execute::<Conversation>(&stream, &start, &ctx).await.unwrap();
    let post = ConversationCommand::PostMessage {
        author: Author::Customer,
        text: MessageText::parse("How do I change my PIN?").unwrap(),
        client_message_id: None,
    };
    let posted = commands.execute::<Conversation>(&stream, &post, &ctx).await.unwrap().appended.unwrap().last_position;
    assert!(posted > bad);

    let vectors = crate::vectors::vectors().await;
    let answerer = Arc::new(Answerer::new(AsyncEmbedder::new(shared_embedder()), vectors, AnswerConfig::default()).await.unwrap());
    let worker = Worker {
        commands: commands.clone(),
        answerer,
        checkpoint: Arc::new(Checkpoint::in_dir(dir.path().to_path_buf())),
        share: Arc::new(WorkShare::everything(partition_units())),
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run_until(log.clone(), stop));
    // The worker answers the message (with an answer or a handoff): an event after it.
    let decided = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let events = log.read_stream(&stream, 0).await.unwrap();
            if events.last().is_some_and(|e| e.position > posted) {
                return events.last().map(|e| e.event_type.clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the message after the corrupt event is decided on");
    assert!(decided.is_some());
    stop_tx.send_replace(true);
    task.await.unwrap();
}
