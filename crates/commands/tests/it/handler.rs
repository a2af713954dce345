//! Command handling over a real SQLite log: load, decide, append, retry,
//! and personal data that is sealed in the log and shredded on erasure.

use jamuna_commands::handler::{CommandContext, CommandError, CommandHandler};
use jamuna_commands::keys::sqlite::SqliteKeyStore;
use jamuna_commands::log::sqlite::{SqliteLog, raw_data_at};
use jamuna_commands::{EventLog, Sealer};
use jamuna_domain::conversation::*;
use jamuna_domain::envelope::Envelope;
use jamuna_domain::user::{Email, Role, User, UserCommand, UserEvent};
use jamuna_domain::{ClientMessageId, ConversationId, MessageText, Personal, StreamId, TenantId, UserId};
use std::sync::Arc;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    handler: Arc<CommandHandler>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("events.db");
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(&path).await.expect("log"));
    let keys = Arc::new(SqliteKeyStore::open(dir.path().join("keys.db")).expect("keys"));
    Fixture { _dir: dir, path, handler: Arc::new(CommandHandler::new(log, Sealer::new(keys))) }
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}
fn ctx() -> CommandContext {
    CommandContext::new(tenant(), chrono::Utc::now())
}
fn customer() -> UserId {
    UserId::parse("cust-1").unwrap()
}

async fn start(h: &CommandHandler, id: &str) -> StreamId {
    let cid = ConversationId::parse(id).unwrap();
    let stream = StreamId::conversation(&tenant(), &cid);
    h.execute::<Conversation>(
        &stream,
        &ConversationCommand::Start { tenant: tenant(), conversation_id: cid, customer: customer(), channel: Channel::Web },
        &ctx(),
    )
    .await
    .expect("start");
    stream
}

fn post(text: &str, cmid: &str) -> ConversationCommand {
    ConversationCommand::PostMessage {
        author: Author::Customer,
        text: Some(MessageText::parse(text).unwrap()),
        client_message_id: Some(ClientMessageId::parse(cmid).unwrap()),
        attachments: vec![],
    }
}

#[tokio::test]
async fn a_retried_message_is_stored_once_and_acknowledged_with_its_version() {
    let f = fixture().await;
    let s = start(&f.handler, "c1").await;
    let first = f.handler.execute::<Conversation>(&s, &post("where is my card?", "m-1"), &ctx()).await.expect("post");
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].version, 2);
    let retry = f.handler.execute::<Conversation>(&s, &post("where is my card?", "m-1"), &ctx()).await.expect("retry");
    assert!(retry.events.is_empty());
    assert_eq!(retry.state.client_message_version(&ClientMessageId::parse("m-1").unwrap()), Some(2));
    assert_eq!(f.handler.log().read_stream(&s, 0).await.unwrap().len(), 2);
}

#[tokio::test]
async fn domain_refusals_are_typed() {
    let f = fixture().await;
    let s = start(&f.handler, "c2").await;
    f.handler.execute::<Conversation>(&s, &ConversationCommand::Resolve { by: None }, &ctx()).await.expect("resolve");
    let r = f.handler.execute::<Conversation>(&s, &post("hello?", "m-2"), &ctx()).await;
    assert!(matches!(r, Err(CommandError::Rejected(ConversationError::AlreadyResolved))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_on_one_conversation_all_land_through_retries() {
    let f = fixture().await;
    let s = start(&f.handler, "busy").await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (h, s) = (f.handler.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                h.execute::<Conversation>(&s, &post(&format!("message {t}/{i}"), &format!("m{t}-{i}")), &ctx()).await.expect("post");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let events = f.handler.log().read_stream(&s, 0).await.unwrap();
    assert_eq!(events.len(), 161);
    assert_eq!(events.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=161).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_racing_from_two_processes_retry_their_conflicts() {
    // Two handlers over one log behave like two processes: their caches and
    // locks are separate, so their appends really conflict.
    let f = fixture().await;
    let other = Arc::new(CommandHandler::new(f.handler.log().clone(), f.handler.sealer().clone()));
    let s = start(&f.handler, "raced").await;
    let mut tasks = Vec::new();
    for (t, h) in [f.handler.clone(), other, f.handler.clone()].into_iter().enumerate() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..30 {
                h.execute::<Conversation>(&s, &post(&format!("message {t}/{i}"), &format!("r{t}-{i}")), &ctx()).await.expect("post");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let events = f.handler.log().read_stream(&s, 0).await.unwrap();
    assert_eq!(events.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=91).collect::<Vec<_>>());
}

#[tokio::test]
async fn personal_data_is_sealed_in_the_log_and_shredded_on_erasure() {
    let f = fixture().await;
    let user_stream = StreamId::user(&tenant(), &customer());
    let register = UserCommand::Register {
        tenant: tenant(),
        user_id: customer(),
        role: Role::Customer,
        name: Some("Ada Lovelace".into()),
        email: Some(Email::parse("ada@example.com").unwrap()),
        password_hash: None,
    };
    f.handler.execute::<User>(&user_stream, &register, &ctx()).await.expect("register");
    let s = start(&f.handler, "c3").await;
    let posted = f.handler.execute::<Conversation>(&s, &post("my IBAN is DE89 3704 0044", "m-3"), &ctx()).await.expect("post");
    let position = posted.appended.expect("appended").first_position;

    // What is on disk is ciphertext.
    let raw = raw_data_at(&f.path, position).unwrap().expect("stored");
    assert!(!raw.contains("IBAN"), "plain text in the log: {raw}");
    let raw_user = raw_data_at(&f.path, 1).unwrap().expect("stored");
    assert!(!raw_user.contains("Ada") && !raw_user.contains("ada@"), "plain text in the log: {raw_user}");

    // Readable while the user exists...
    let read = f.handler.log().read_stream(&s, 1).await.unwrap();
    let opened: Envelope<ConversationEvent> = f.handler.sealer().open(&read[0]).await.unwrap();
    assert!(matches!(&opened.data, ConversationEvent::MessagePosted { text: Personal::Plain(t), .. } if t.contains("IBAN")));

    // ...and gone once they are erased, while the events stay.
    f.handler.execute::<User>(&user_stream, &UserCommand::Erase, &ctx()).await.expect("erase");
    f.handler.sealer().keys().erase(&tenant(), &customer()).await.expect("erase key");
    let opened: Envelope<ConversationEvent> = f.handler.sealer().open(&read[0]).await.unwrap();
    assert!(matches!(opened.data, ConversationEvent::MessagePosted { text: Personal::Erased, .. }));
    let user_events = f.handler.log().read_stream(&user_stream, 0).await.unwrap();
    assert_eq!(user_events.len(), 2);
    let registered: Envelope<UserEvent> = f.handler.sealer().open(&user_events[0]).await.unwrap();
    assert!(matches!(registered.data, UserEvent::UserRegistered { name: Some(Personal::Erased), email: Some(Personal::Erased), .. }));
    // Nothing new is stored about an erased person.
    let late = f.handler.execute::<Conversation>(&s, &post("one more thing", "m-4"), &ctx()).await;
    assert!(matches!(late, Err(CommandError::Seal(_))), "{late:?}");
}
