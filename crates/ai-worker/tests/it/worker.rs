//! The worker over a real SQLite log: a stored event it cannot decode does
//! not stop it answering the messages after it.

use std::sync::Arc;
use std::time::Duration;

use jamuna_ai_worker::AsyncEmbedder;
use jamuna_ai_worker::answer::{AnswerConfig, Answerer};
use jamuna_ai_worker::worker::{Checkpoint, CheckpointStore, Worker, partition_units};
use jamuna_commands::handler::CommandContext;
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::log::sqlite::{SqliteLog, append_undecodable};
use jamuna_commands::{CommandHandler, EventLog, Sealer};
use jamuna_domain::conversation::{Author, Channel, Conversation, ConversationCommand, ConversationEvent};
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
        text: Some(MessageText::parse("How do I change my PIN?").unwrap()),
        client_message_id: None,
        attachments: vec![],
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

/// A log, a command handler and a worker that is not following the log:
/// the tests hand it batches themselves.
async fn batch_worker(dir: &std::path::Path) -> (Arc<dyn EventLog>, Arc<CommandHandler>, Worker) {
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(dir.join("events.db")).await.unwrap());
    let commands = Arc::new(CommandHandler::new(log.clone(), Sealer::new(Arc::new(MemoryKeyStore::default()))));
    let vectors = crate::vectors::vectors().await;
    let answerer = Arc::new(Answerer::new(AsyncEmbedder::new(shared_embedder()), vectors, AnswerConfig::default()).await.unwrap());
    let worker = Worker {
        commands: commands.clone(),
        answerer,
        checkpoint: Arc::new(Checkpoint::in_dir(dir.to_path_buf())),
        share: Arc::new(WorkShare::everything(partition_units())),
    };
    (log, commands, worker)
}

/// Starts conversation `id` of tenant acme and posts the customer's `messages`.
async fn conversation(commands: &CommandHandler, id: &str, handed_off: bool, messages: &[&str]) -> StreamId {
    let tenant = TenantId::parse("acme").unwrap();
    let stream = StreamId::conversation(&tenant, &ConversationId::parse(id).unwrap());
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    let start = ConversationCommand::Start {
        tenant: tenant.clone(),
        conversation_id: ConversationId::parse(id).unwrap(),
        customer: UserId::parse("u1").unwrap(),
        channel: Channel::Web,
    };
    commands.execute::<Conversation>(&stream, &start, &ctx).await.unwrap();
    if handed_off {
        let handoff = ConversationCommand::RequestHandoff { reason: jamuna_domain::conversation::HandoffReason::CustomerAsked, why: None };
        commands.execute::<Conversation>(&stream, &handoff, &ctx).await.unwrap();
    }
    for m in messages {
        let post = ConversationCommand::PostMessage {
            author: Author::Customer,
            text: Some(MessageText::parse(m).unwrap()),
            client_message_id: None,
            attachments: vec![],
        };
        commands.execute::<Conversation>(&stream, &post, &ctx).await.unwrap();
    }
    stream
}

/// What follows the customer's messages in a conversation: (version, what) for
/// each bot answer (`in_reply_to`) or handoff.
async fn responses(log: &Arc<dyn EventLog>, commands: &CommandHandler, stream: &StreamId) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for recorded in log.read_stream(stream, 0).await.unwrap() {
        let opened = commands.sealer().open::<ConversationEvent>(&recorded).await.unwrap();
        match opened.data {
            ConversationEvent::BotAnswered { in_reply_to, .. } => out.push((recorded.version, format!("answers {in_reply_to}"))),
            ConversationEvent::HandoffRequested { .. } => out.push((recorded.version, "handoff".into())),
            _ => {}
        }
    }
    out
}

/// The customer messages in the log, in log order.
async fn posted(log: &Arc<dyn EventLog>) -> Vec<jamuna_commands::RecordedEvent> {
    log.read_all(0, 1000).await.unwrap().into_iter().filter(|e| e.event_type == "MessagePosted").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_messages_of_one_conversation_in_one_batch_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, commands, worker) = batch_worker(dir.path()).await;
    // c1's two messages around c2's one, all in one batch.
    let c1 = conversation(&commands, "c1", false, &["Hello"]).await;
    let c2 = conversation(&commands, "c2", false, &["Good morning"]).await;
    let tenant = TenantId::parse("acme").unwrap();
    let post = ConversationCommand::PostMessage {
        author: Author::Customer,
        text: Some(MessageText::parse("Thank you").unwrap()),
        client_message_id: None,
        attachments: vec![],
    };
    commands.execute::<Conversation>(&c1, &post, &CommandContext::new(tenant, chrono::Utc::now())).await.unwrap();
    let batch = posted(&log).await;
    assert_eq!(batch.len(), 3);
    worker.answer_all(&batch.iter().collect::<Vec<_>>()).await;

    // c1: Started (1), Hello (2), Thank you (3), then the answer to 2 before the answer to 3.
    assert_eq!(responses(&log, &commands, &c1).await, vec![(4, "answers 2".to_string()), (5, "answers 3".to_string())]);
    assert_eq!(responses(&log, &commands, &c2).await, vec![(3, "answers 2".to_string())]);
    // Handed the same batch again, the worker answers nothing twice.
    worker.answer_all(&batch.iter().collect::<Vec<_>>()).await;
    assert_eq!(log.read_stream(&c1, 0).await.unwrap().len(), 5);
    assert_eq!(log.read_stream(&c2, 0).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_handed_off_conversation_answers_the_others_only() {
    let dir = tempfile::tempdir().unwrap();
    let (log, commands, worker) = batch_worker(dir.path()).await;
    let open = conversation(&commands, "open", false, &["Hello"]).await;
    let human = conversation(&commands, "human", true, &["Hello", "Thank you"]).await;
    let batch = posted(&log).await;
    assert_eq!(batch.len(), 3);
    worker.answer_all(&batch.iter().collect::<Vec<_>>()).await;

    assert_eq!(responses(&log, &commands, &open).await, vec![(3, "answers 2".to_string())]);
    // Started (1), HandoffRequested (2), the two messages (3, 4): the bot stays silent.
    assert_eq!(responses(&log, &commands, &human).await, vec![(2, "handoff".to_string())]);
    assert_eq!(log.read_stream(&human, 0).await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_files_only_is_left_for_a_human() {
    let dir = tempfile::tempdir().unwrap();
    let (log, commands, worker) = batch_worker(dir.path()).await;
    let c1 = conversation(&commands, "c1", false, &["Hello"]).await;
    let files_only = ConversationCommand::PostMessage {
        author: Author::Customer,
        text: None,
        client_message_id: None,
        attachments: vec![jamuna_domain::attachment::Attachment {
            id: jamuna_domain::AttachmentId::parse("f1").unwrap(),
            name: jamuna_domain::Personal::plain("receipt.png"),
            content_type: jamuna_domain::attachment::ContentType::Png,
            size: 10,
        }],
    };
    let tenant = TenantId::parse("acme").unwrap();
    commands.execute::<Conversation>(&c1, &files_only, &CommandContext::new(tenant, chrono::Utc::now())).await.unwrap();
    let batch = posted(&log).await;
    assert_eq!(batch.len(), 2);
    worker.answer_all(&batch.iter().collect::<Vec<_>>()).await;
    // Started (1), Hello (2), the file (3): only Hello is answered.
    assert_eq!(responses(&log, &commands, &c1).await, vec![(4, "answers 2".to_string())]);
}

/// A following worker reads and embeds the next batch while the last one's
/// answers are still being appended: messages that arrive in successive
/// batches are still each answered once, in order, and the checkpoints it
/// stores on stopping cover them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arriving_while_answers_are_appended_are_answered_once_in_order() {
    const ROUNDS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let (log, commands, worker) = batch_worker(dir.path()).await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run_until(log.clone(), stop));
    let tenant = TenantId::parse("acme").unwrap();
    let mut streams = Vec::new();
    for c in 0..8 {
        streams.push(conversation(&commands, &format!("c{c}"), false, &["Hello"]).await);
    }
    // More messages, a few milliseconds apart: some land while the worker is
    // embedding or appending, so they come in later batches.
    for round in 0..ROUNDS {
        for stream in &streams {
            let text = if round % 2 == 0 { "Thank you" } else { "Hello again" };
            let post = ConversationCommand::PostMessage {
                author: Author::Customer,
                text: Some(MessageText::parse(text).unwrap()),
                client_message_id: None,
                attachments: vec![],
            };
            commands.execute::<Conversation>(stream, &post, &CommandContext::new(tenant.clone(), chrono::Utc::now())).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let customer_messages = |events: &[jamuna_commands::RecordedEvent]| {
        events.iter().filter(|e| e.event_type == "MessagePosted").map(|e| e.version).collect::<Vec<_>>()
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        for stream in &streams {
            loop {
                if responses(&log, &commands, stream).await.len() == ROUNDS + 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await
    .expect("every message is answered");
    stop_tx.send_replace(true);
    task.await.unwrap();
    for stream in &streams {
        let asked = customer_messages(&log.read_stream(stream, 0).await.unwrap());
        let answered: Vec<String> = responses(&log, &commands, stream).await.into_iter().map(|(_, what)| what).collect();
        assert_eq!(answered, asked.iter().map(|v| format!("answers {v}")).collect::<Vec<_>>(), "{stream}");
    }
    // The checkpoints stored on stopping cover every message: all answered.
    let last_message = posted(&log).await.last().map(|e| e.position).unwrap();
    let checkpoints = Checkpoint::in_dir(dir.path().to_path_buf());
    for stream in &streams {
        let key = jamuna_ai_worker::worker::checkpoint_key(jamuna_projections::work_share::partition_of(stream.id()));
        assert!(checkpoints.load(&key).await.unwrap() >= last_message, "{key}");
    }
}
