//! Every blob store against the same contract (`blobs::contract`): files
//! under a directory, and a real S3-compatible server (gofakes3, started by
//! `make test` / `scripts/with-services.sh`, bucket `jamuna`).

use jamuna_commands::blobs::contract;
use jamuna_commands::blobs::fs::FsBlobs;
use jamuna_commands::blobs::s3::{S3Blobs, S3Config};

#[tokio::test]
async fn files_keep_the_contract() {
    let dir = tempfile::tempdir().expect("dir");
    let a = FsBlobs::open(dir.path()).expect("open");
    let b = FsBlobs::open(dir.path()).expect("open again");
    contract::run(&a, &b, "contract").await;
}

#[tokio::test]
async fn s3_keeps_the_contract() {
    let Ok(endpoint) = std::env::var("JAMUNA_TEST_S3_URL") else {
        assert!(!crate::services_required(), "JAMUNA_TEST_S3_URL is not set, but make test requires an S3-compatible server");
        eprintln!("NOT RUN: the S3 blob store test needs JAMUNA_TEST_S3_URL (make test starts gofakes3 and sets it)");
        return;
    };
    let config = S3Config {
        endpoint,
        bucket: "jamuna".into(),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test-secret".into(),
    };
    let a = S3Blobs::new(config.clone()).expect("client");
    let b = S3Blobs::new(config).expect("client");
    contract::run(&a, &b, &format!("contract-{}", uuid::Uuid::now_v7().simple())).await;
}

#[tokio::test]
async fn an_unreachable_s3_server_is_unavailable() {
    let config = S3Config {
        endpoint: "http://127.0.0.1:9".into(),
        bucket: "jamuna".into(),
        region: "us-east-1".into(),
        access_key_id: "k".into(),
        secret_access_key: "s".into(),
    };
    let s3 = S3Blobs::new(config).expect("client");
    let key = jamuna_commands::blobs::BlobKey::parse("x").expect("key");
    use jamuna_commands::blobs::BlobStore;
    assert!(matches!(s3.get(&key).await, Err(jamuna_commands::blobs::BlobError::Unavailable(_))));
}
