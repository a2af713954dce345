//! The MongoDB read models against their contracts, on a real
//! MongoDB-compatible server (FerretDB, started by `make test`, found at
//! JAMUNA_TEST_MONGODB_URL).

use jamuna_projections::analytics::mongo::MongoAnalytics;
use jamuna_projections::conversations::mongo::MongoConversations;
use jamuna_projections::mongo::MongoReadDb;
use jamuna_projections::testing::{Stores, live_equals_replay};
use jamuna_projections::users::mongo::MongoUsers;
use std::sync::Arc;

/// A database of its own per call, so tests do not see each other's documents.
pub async fn db() -> Option<MongoReadDb> {
    let Ok(url) = std::env::var("JAMUNA_TEST_MONGODB_URL") else {
        assert!(!crate::services_required(), "JAMUNA_TEST_MONGODB_URL is not set, but make test requires a MongoDB-compatible server");
        eprintln!("NOT RUN: the MongoDB read-model tests need JAMUNA_TEST_MONGODB_URL (make test starts FerretDB and sets it)");
        return None;
    };
    let name = format!("t{}", uuid::Uuid::now_v7().simple());
    Some(MongoReadDb::connect(&url, &name).await.expect("connect to MongoDB"))
}

pub async fn conversations() -> Option<MongoConversations> {
    Some(MongoConversations::new(db().await?).await.expect("conversations"))
}
pub async fn users() -> Option<MongoUsers> {
    Some(MongoUsers::new(db().await?).await.expect("users"))
}
pub async fn analytics() -> Option<MongoAnalytics> {
    Some(MongoAnalytics::new(db().await?).await.expect("analytics"))
}

mod conversations_contract {
    jamuna_projections::conversation_store_contract!(super::conversations);
}
mod users_contract {
    jamuna_projections::user_store_contract!(super::users);
}
mod analytics_contract {
    jamuna_projections::analytics_store_contract!(super::analytics);
}
pub async fn gaps() -> Option<jamuna_projections::gaps::mongo::MongoGaps> {
    Some(jamuna_projections::gaps::mongo::MongoGaps::new(db().await?).await.expect("gaps"))
}
mod gaps_contract {
    jamuna_projections::gap_store_contract!(super::gaps);
}

async fn stores() -> Option<Stores> {
    Some(Stores {
        conversations: Arc::new(conversations().await?),
        users: Arc::new(users().await?),
        analytics: Arc::new(analytics().await?),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_built_live_equal_read_models_replayed() {
    let (Some(live), Some(replayed)) = (stores().await, stores().await) else { return };
    let f = crate::Fixture::new().await;
    live_equals_replay(f.handler.clone(), live, replayed).await;
}

/// The three models in one database whose rebuilds write out what they hold
/// every `staged` documents.
async fn stores_writing_out_every(staged: usize) -> Option<Stores> {
    let db = db().await?.with_staged_documents(staged);
    Some(Stores {
        conversations: Arc::new(MongoConversations::new(db.clone()).await.expect("conversations")),
        users: Arc::new(MongoUsers::new(db.clone()).await.expect("users")),
        analytics: Arc::new(MongoAnalytics::new(db).await.expect("analytics")),
    })
}

/// A rebuild that holds only a few documents at a time (so it writes them
/// out many times and reads back those that later events change, erasures
/// included) builds what the live projector builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilds_that_write_out_as_they_go_equal_live_read_models() {
    let (Some(live), Some(replayed)) = (stores().await, stores_writing_out_every(7).await) else { return };
    let f = crate::Fixture::new().await;
    live_equals_replay(f.handler.clone(), live, replayed).await;
}

/// The same, event by event: a conversations rebuild in batches of three that
/// writes out every two documents, so that most batches read back and
/// replace what an earlier one wrote, and an erasure finds conversations
/// both held and written, ends as the same events fed live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_that_writes_out_often_builds_what_live_batches_build() {
    use jamuna_domain::conversation::Author;
    use jamuna_domain::user::UserEvent;
    use jamuna_projections::conversations::PROJECTION;
    use jamuna_projections::event::ReadModel;
    use jamuna_projections::testing::{conversations_snapshot, feed, inbox_script, tenant};
    let (Some(live), Some(db)) = (conversations().await, db().await) else { return };
    let rebuilt = MongoConversations::new(db.with_staged_documents(2)).await.expect("store");
    let mut script = inbox_script();
    script.advance(60).user("acme", "u1", UserEvent::UserErased);
    script.advance(60).say("acme", "c3", Author::Agent { id: jamuna_projections::testing::user("a1") }, "Done, anything else?");
    script.advance(60).say("acme", "c2", Author::Customer, "Still waiting");
    feed(&live, PROJECTION, &script.events, 3).await;
    rebuilt.begin_rebuild(PROJECTION).await.expect("begin the rebuild");
    feed(&rebuilt, PROJECTION, &script.events, 3).await;
    rebuilt.end_rebuild(PROJECTION).await.expect("end the rebuild");
    for t in ["acme", "globex"] {
        assert_eq!(conversations_snapshot(&live, &tenant(t)).await, conversations_snapshot(&rebuilt, &tenant(t)).await);
    }
    assert_eq!(rebuilt.checkpoint(PROJECTION).await.expect("checkpoint"), script.events.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_have_the_seed_shape() {
    use jamuna_projections::conversations::PROJECTION;
    use jamuna_projections::testing::{feed, inbox_script};
    let Some(db) = db().await else { return };
    let store = MongoConversations::new(db.clone()).await.expect("store");
    feed(&store, PROJECTION, &inbox_script().events, 50).await;
    let doc = store.raw_document("acme.conversation.c1").await.expect("read").expect("c1");
    assert_eq!(doc.get_str("sessionId").ok(), Some("c1"));
    let meta = doc.get_document("metadata").expect("metadata");
    assert_eq!(meta.get_str("userId").ok(), Some("u1"));
    assert_eq!(meta.get_str("channel").ok(), Some("web"));
    let messages = doc.get_array("messages").expect("messages");
    let first = messages[0].as_document().expect("a message document");
    assert_eq!(first.get_str("sender").ok(), Some("user"));
    assert_eq!(first.get_str("content").ok(), Some("Where is my card? It has been two weeks"));
    assert!(first.get_datetime("timestamp").is_ok());
    let second = messages[1].as_document().expect("a message document");
    assert_eq!(second.get_str("sender").ok(), Some("bot"));
    assert_eq!(second.get_str("intent").ok(), Some("card_delivery"));
}
