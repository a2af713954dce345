//! Every key store against the same contract (`keys::contract`): memory,
//! SQLite, and MongoDB on a real FerretDB (JAMUNA_TEST_MONGODB_URL).

use jamuna_commands::keys::contract;
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::keys::mongo::MongoKeyStore;
use jamuna_commands::keys::sqlite::SqliteKeyStore;

#[tokio::test]
async fn memory_keeps_the_contract() {
    let store = MemoryKeyStore::default();
    contract::run(&store, &store).await;
}

#[tokio::test]
async fn sqlite_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("dir");
    let a = SqliteKeyStore::open(dir.path().join("keys.db")).expect("open");
    contract::run(&a, &a).await;
}

#[tokio::test]
async fn mongo_keeps_the_contract_across_two_connections() {
    let Ok(url) = std::env::var("JAMUNA_TEST_MONGODB_URL") else {
        assert!(!crate::services_required(), "JAMUNA_TEST_MONGODB_URL is not set, but make test requires MongoDB/FerretDB");
        eprintln!("NOT RUN: the MongoDB key store test needs JAMUNA_TEST_MONGODB_URL (make test starts FerretDB and sets it)");
        return;
    };
    let database = format!("keys_{}", uuid::Uuid::now_v7().simple());
    let a = MongoKeyStore::connect(&url, &database).await.expect("connect");
    let b = MongoKeyStore::connect(&url, &database).await.expect("connect again");
    contract::run(&a, &b).await;
}
