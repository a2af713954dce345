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

async fn stores() -> Option<Stores> {
    Some(Stores { conversations: Arc::new(conversations().await?), users: Arc::new(users().await?), analytics: Arc::new(analytics().await?) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_built_live_equal_read_models_replayed() {
    let (Some(live), Some(replayed)) = (stores().await, stores().await) else { return };
    let f = crate::Fixture::new().await;
    live_equals_replay(f.handler.clone(), live, replayed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_have_the_seed_shape() {
    use jamuna_projections::conversations::PROJECTION;
    use jamuna_projections::testing::{feed, inbox_script};
    let Some(db) = db().await else { return };
    let store = MongoConversations::new(db.clone()).await.expect("store");
    feed(&store, PROJECTION, &inbox_script().events, 50).await;
    let doc = db.raw_conversation("acme.conversation.c1").await.expect("read").expect("c1");
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
