//! What every blob store promises, as one async function each adapter's
//! tests call with a fresh store (and a second handle on the same storage).

use super::{BlobKey, BlobStore};
use bytes::Bytes;

/// Runs the contract. `a` and `b` are two handles on the same fresh storage;
/// `prefix` keeps this run's keys apart from other runs' (a shared bucket).
pub async fn run(a: &dyn BlobStore, b: &dyn BlobStore, prefix: &str) {
    let key = |k: &str| BlobKey::parse(format!("{prefix}/{k}")).expect("key");
    let (one, two, deep) = (key("one"), key("two"), key("t1/c1/deep"));

    assert_eq!(a.get(&one).await.expect("get"), None, "nothing before a put");
    a.put(&one, Bytes::from_static(b"first")).await.expect("put");
    assert_eq!(b.get(&one).await.expect("get").as_deref(), Some(&b"first"[..]), "the other handle sees it");
    assert_eq!(a.get(&two).await.expect("get"), None, "keys are apart");

    a.put(&one, Bytes::from_static(b"second, longer")).await.expect("replace");
    assert_eq!(a.get(&one).await.expect("get").as_deref(), Some(&b"second, longer"[..]), "a put replaces");

    // Every byte value survives, and a blob larger than one network buffer.
    let binary: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    b.put(&deep, Bytes::from(binary.clone())).await.expect("put binary");
    assert_eq!(a.get(&deep).await.expect("get").as_deref(), Some(&binary[..]));
    a.put(&two, Bytes::new()).await.expect("put empty");
    assert_eq!(b.get(&two).await.expect("get").as_deref(), Some(&b""[..]), "an empty blob is not a missing one");

    b.delete(&one).await.expect("delete");
    assert_eq!(a.get(&one).await.expect("get"), None, "deleted for every handle");
    a.delete(&one).await.expect("deleting twice is fine");
    a.delete(&key("never")).await.expect("deleting a missing key is fine");
    assert_eq!(a.get(&deep).await.expect("get").as_deref(), Some(&binary[..]), "deleting one keeps the others");
}
