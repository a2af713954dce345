//! What every key store promises, as one async function each adapter's tests
//! call with a fresh store (and a second handle on the same storage, to check
//! that what one process does the other sees).

use super::KeyStore;
use super::KeyStoreError;
use jamuna_domain::{TenantId, UserId};

/// Runs the contract. `a` and `b` are two handles on the same fresh storage
/// (for an in-process store, the same handle twice).
pub async fn run(a: &dyn KeyStore, b: &dyn KeyStore) {
    let tenant = TenantId::parse("contract-t").expect("tenant");
    let other_tenant = TenantId::parse("contract-u").expect("tenant");
    let alice = UserId::parse("alice").expect("user");
    let bob = UserId::parse("bob").expect("user");

    assert!(a.key_for_opening(&tenant, &alice).await.expect("open").is_none(), "no key before the first seal");
    let k1 = a.key_for_sealing(&tenant, &alice).await.expect("seal");
    let k2 = a.key_for_sealing(&tenant, &alice).await.expect("seal again");
    assert_eq!(k1.0, k2.0, "one key per subject");
    let seen = b.key_for_opening(&tenant, &alice).await.expect("open").expect("the other handle sees the key");
    assert_eq!(seen.0, k1.0);
    let kb = b.key_for_sealing(&tenant, &bob).await.expect("seal bob");
    assert_ne!(kb.0, k1.0, "subjects have their own keys");
    let other = a.key_for_sealing(&other_tenant, &alice).await.expect("seal in another tenant");
    assert_ne!(other.0, k1.0, "tenants have their own keys");

    b.erase(&tenant, &alice).await.expect("erase");
    assert!(a.key_for_opening(&tenant, &alice).await.expect("open").is_none(), "an erased key is gone for every handle");
    assert!(
        matches!(a.key_for_sealing(&tenant, &alice).await, Err(KeyStoreError::Erased(_))),
        "nothing new is sealed for an erased subject"
    );
    a.erase(&tenant, &alice).await.expect("erasing twice is fine");
    assert!(b.key_for_opening(&tenant, &bob).await.expect("open").is_some(), "erasing one subject keeps the others");
    a.erase(&tenant, &UserId::parse("never-sealed").expect("user")).await.expect("erase an unknown subject");
    assert!(matches!(b.key_for_sealing(&tenant, &UserId::parse("never-sealed").expect("user")).await, Err(KeyStoreError::Erased(_))));
}
