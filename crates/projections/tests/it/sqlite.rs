//! The SQLite read models against their contracts, and live == replay.

use jamuna_projections::analytics::sqlite::SqliteAnalytics;
use jamuna_projections::conversations::sqlite::SqliteConversations;
use jamuna_projections::testing::{Stores, live_equals_replay};
use jamuna_projections::users::sqlite::SqliteUsers;
use std::sync::Arc;

fn dir() -> std::path::PathBuf {
    // Lives as long as the test process; each store gets its own.
    tempfile::tempdir().expect("a temp dir").keep()
}

pub async fn conversations() -> Option<SqliteConversations> {
    Some(SqliteConversations::open(dir().join("conversations.db")).expect("open"))
}
pub async fn users() -> Option<SqliteUsers> {
    Some(SqliteUsers::open(dir().join("users.db")).expect("open"))
}
pub async fn analytics() -> Option<SqliteAnalytics> {
    Some(SqliteAnalytics::open(dir().join("analytics.db")).expect("open"))
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
pub async fn gaps() -> Option<jamuna_projections::gaps::sqlite::SqliteGaps> {
    Some(jamuna_projections::gaps::sqlite::SqliteGaps::open(dir().join("gaps.db")).expect("open"))
}
mod gaps_contract {
    jamuna_projections::gap_store_contract!(super::gaps);
}

pub async fn stores() -> Stores {
    Stores {
        conversations: Arc::new(conversations().await.expect("store")),
        users: Arc::new(users().await.expect("store")),
        analytics: Arc::new(analytics().await.expect("store")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_built_live_equal_read_models_replayed() {
    let f = crate::Fixture::new().await;
    live_equals_replay(f.handler.clone(), stores().await, stores().await).await;
}

#[tokio::test]
async fn a_read_model_reopens_with_its_data_and_checkpoint() {
    use jamuna_projections::ReadModel;
    use jamuna_projections::conversations::{ConversationQuery, ConversationStore, PROJECTION};
    use jamuna_projections::testing::{feed, inbox_script, tenant};
    let d = dir();
    let script = inbox_script();
    {
        let s = SqliteConversations::open(d.join("c.db")).expect("open");
        feed(&s, PROJECTION, &script.events, 100).await;
    }
    let s = SqliteConversations::open(d.join("c.db")).expect("reopen");
    assert_eq!(s.checkpoint(PROJECTION).await.expect("checkpoint"), script.events.len() as u64);
    assert_eq!(s.list(&ConversationQuery::inbox(tenant("acme"))).await.expect("list").items.len(), 4);
}
