//! The push hub over a real SQLite log: a stored message it cannot decode is
//! skipped (logged and counted), and the pushes after it go on.

use jamuna_commands::handler::CommandContext;
use jamuna_commands::keys::sqlite::SqliteKeyStore;
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::{CommandHandler, EventLog, Sealer};
use jamuna_domain::conversation::{Author, Channel, Conversation, ConversationCommand};
use jamuna_domain::{ConversationId, MessageText, StreamId, TenantId, UserId};
use jamuna_gateway::ws::hub::{Hub, Push};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_skips_a_message_it_cannot_decode_and_pushes_the_next_event() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("events.db");
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(&path).await.expect("the log opens"));
    let sealer = Sealer::new(Arc::new(SqliteKeyStore::open(dir.path().join("keys.db")).expect("the key store opens")));
    let commands = CommandHandler::new(log.clone(), sealer.clone());
    let tenant = TenantId::parse("acme").expect("tenant");
    let id = ConversationId::parse("c1").expect("id");
    let stream = StreamId::conversation(&tenant, &id);
    let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
    let start = ConversationCommand::Start {
        tenant: tenant.clone(),
        conversation_id: id,
        customer: UserId::parse("u1").expect("user"),
        channel: Channel::Web,
    };
    commands.execute::<Conversation>(&stream, &start, &ctx).await.expect("started");

    let hub = Arc::new(Hub::default());
    let task = tokio::spawn(hub.clone().run(log.clone(), sealer));
    let head = log.head().await.expect("head");
    tokio::time::timeout(PATIENCE, async {
        while hub.position.load(Ordering::Relaxed) < head {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub follows the log");
    let (outlet, mut rx) = hub.outlet();
    hub.subscribe(&stream, &outlet);

    let bad = jamuna_commands::log::sqlite::append_undecodable(&path).expect("a corrupt row");
    let post = ConversationCommand::PostMessage {
        author: Author::Customer,
        text: Some(MessageText::parse("still there?").expect("text")),
        client_message_id: None,
        attachments: vec![],
    };
    let posted = commands.execute::<Conversation>(&stream, &post, &ctx).await.expect("posted").appended.expect("appended").last_position;
    assert!(posted > bad);

    let pushed = tokio::time::timeout(PATIENCE, rx.recv()).await.expect("the event after the corrupt message is pushed").expect("open");
    match pushed {
        Push::Event(p) => assert_eq!(p.position, posted),
        other => panic!("not an event: {other:?}"),
    }
    // The hub pushes an event before it records its position: wait for that.
    tokio::time::timeout(PATIENCE, async {
        while hub.position.load(Ordering::Relaxed) < posted {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub has moved past the corrupt message");
    task.abort();
}
