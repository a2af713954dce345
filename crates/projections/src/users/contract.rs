//! The contract every users read-model adapter passes (SQLite, MongoDB):
//! tenants, login by e-mail, listing by role, erasure.
//!
//! An adapter's tests invoke [`user_store_contract!`](crate::user_store_contract)
//! with a function that makes a fresh, empty store (or `None` when the
//! adapter's server is not configured, which the function itself reports);
//! the macro expands to one test per rule, each given two fresh stores.

use super::{PROJECTION as P, UserStore};
use crate::event::Fact;
use crate::testing::{Script, feed, feed_twice, tenant, user, users_snapshot};
use jamuna_domain::tenant::{TenantEvent, TenantSettings};
use jamuna_domain::user::{Role, UserEvent};
use jamuna_domain::{Personal, StreamId};
use std::sync::Arc;

/// One test per rule of the user-store contract.
#[macro_export]
macro_rules! user_store_contract {
    ($make:path) => {
        $crate::store_contract!(@tests $make, users;
            login_finds_users_by_email,
            erased_users_lose_their_personal_data,
            tenants_by_id_and_widget_key,
            users_are_listed_by_role_in_pages,
            every_user_event_twice_changes_nothing,
            customer_identities_show_until_erased,
        );
    };
}

type S = Arc<dyn UserStore>;

pub async fn login_finds_users_by_email(a: S, _b: S) {
    let script = people_script();
    feed(a.as_ref(), P, &script.events, 3).await;
    let ada = a.find_by_email(&tenant("acme"), " ADA@example.com ").await.expect("find").expect("ada is found");
    assert_eq!((ada.id.as_str(), ada.tenant.as_str(), ada.role), ("ada", "acme", Role::Agent));
    assert_eq!(ada.password_hash.as_deref(), Some("$argon2id$hash-of-ada"));
    assert_eq!((ada.name.as_deref(), ada.email.as_deref(), ada.erased), (Some("Name of ada"), Some("ada@example.com"), false));
    assert_eq!(ada.registered_at, script.events[3].at);
    let other = a.find_by_email(&tenant("globex"), "ada@example.com").await.expect("find").expect("found");
    assert_eq!(other.tenant.as_str(), "globex");
    assert!(a.find_by_email(&tenant("acme"), "nobody@example.com").await.expect("find").is_none());
    assert_eq!(a.user(&tenant("acme"), &user("cust1")).await.expect("user").map(|u| u.role), Some(Role::Agent));
    assert!(a.user(&tenant("globex"), &user("cust1")).await.expect("user").is_none());
}

pub async fn erased_users_lose_their_personal_data(a: S, b: S) {
    let mut script = people_script();
    script.advance(10).user("acme", "ada", UserEvent::UserErased);
    feed(a.as_ref(), P, &script.events, 4).await;
    let ada = a.user(&tenant("acme"), &user("ada")).await.expect("user").expect("still listed");
    assert!(ada.erased);
    assert_eq!((ada.name, ada.email, ada.password_hash), (None, None, None));
    assert!(a.find_by_email(&tenant("acme"), "ada@example.com").await.expect("find").is_none());
    assert!(a.find_by_email(&tenant("globex"), "ada@example.com").await.expect("find").is_some());
    // A replay once the key is gone reads the same.
    let mut replayed = script.events.clone();
    for e in &mut replayed {
        if e.stream == StreamId::user(&tenant("acme"), &user("ada"))
            && let Fact::User(UserEvent::UserRegistered { name, email, password_hash, .. }) = &mut e.fact
        {
            for p in [name, email, password_hash].into_iter().flatten() {
                *p = Personal::Erased;
            }
        }
    }
    feed(b.as_ref(), P, &replayed, 2).await;
    assert_eq!(users_snapshot(a.as_ref()).await, users_snapshot(b.as_ref()).await);
}

pub async fn tenants_by_id_and_widget_key(a: S, _b: S) {
    let mut script = people_script();
    script.advance(10).tenant("acme", TenantEvent::WidgetKeyRotated { widget_key: "wk_acme_rotated_0123456789abc".into() });
    script.advance(10).tenant("acme", TenantEvent::TenantSettingsChanged { settings: TenantSettings::new(vec![], false) });
    feed(a.as_ref(), P, &script.events, 4).await;
    assert!(a.find_tenant_by_widget_key("wk_acme_0123456789abcdefghij").await.expect("find").is_none(), "the old key opens nothing");
    let acme = a.find_tenant_by_widget_key("wk_acme_rotated_0123456789abc").await.expect("find").expect("the new key works");
    assert_eq!((acme.id.as_str(), acme.name.as_str(), acme.version, acme.settings.self_signup), ("acme", "Acme", 3, false));
    assert_eq!(a.tenant(&tenant("globex")).await.expect("tenant").map(|t| t.name), Some("Globex".into()));
    assert!(a.tenant(&tenant("initech")).await.expect("tenant").is_none());
    assert_eq!(a.tenants().await.expect("tenants").iter().map(|t| t.id.to_string()).collect::<Vec<_>>(), ["acme", "globex"]);
}

pub async fn users_are_listed_by_role_in_pages(a: S, _b: S) {
    feed(a.as_ref(), P, &people_script().events, 100).await;
    let all = a.users(&tenant("acme"), None, None, 0).await.expect("users");
    assert_eq!(all.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["ada", "admin1", "cust1", "visitor"]);
    let agents = a.users(&tenant("acme"), Some(Role::Agent), None, 0).await.expect("users");
    assert_eq!(agents.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["ada", "cust1"]);
    let page = a.users(&tenant("acme"), None, Some(&user("admin1")), 1).await.expect("users");
    assert_eq!(page.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["cust1"]);
}

pub async fn every_user_event_twice_changes_nothing(a: S, b: S) {
    let mut script = people_script();
    script.advance(10).user("acme", "visitor", UserEvent::UserErased);
    feed(a.as_ref(), P, &script.events, 3).await;
    feed_twice(b.as_ref(), P, &script.events).await;
    assert_eq!(users_snapshot(a.as_ref()).await, users_snapshot(b.as_ref()).await);
}

pub async fn customer_identities_show_until_erased(a: S, b: S) {
    let mut script = people_script();
    let identified = |verified: bool, name: &str| UserEvent::CustomerIdentified {
        external_id: verified.then(|| Personal::plain("shop-42")),
        name: Some(Personal::plain(name)),
        email: Some(Personal::plain("Grace@Example.com")),
        attributes: verified.then(|| Personal::plain(r#"{"plan":"pro","seats":"12"}"#)),
        verified,
    };
    script.advance(10).user("acme", "visitor", identified(false, "Grace from the form"));
    script.advance(10).user("acme", "visitor", identified(true, "Grace Hopper"));
    feed(a.as_ref(), P, &script.events, 3).await;
    let visitor = a.user(&tenant("acme"), &user("visitor")).await.expect("user").expect("listed");
    let identity = visitor.identity.expect("identified");
    assert_eq!(
        (identity.external_id.as_deref(), identity.name.as_deref(), identity.email.as_deref(), identity.verified),
        (Some("shop-42"), Some("Grace Hopper"), Some("grace@example.com"), true)
    );
    assert_eq!(identity.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), ["plan=pro", "seats=12"]);
    assert!(a.user(&tenant("acme"), &user("ada")).await.expect("user").expect("listed").identity.is_none(), "nobody else's");

    script.advance(10).user("acme", "visitor", UserEvent::UserErased);
    feed(a.as_ref(), P, &script.events, 3).await;
    let erased = a.user(&tenant("acme"), &user("visitor")).await.expect("user").expect("still listed");
    assert!(erased.erased && erased.identity.is_none(), "erasure drops the identity");
    // A replay once the key is gone reads the same.
    let mut replayed = script.events.clone();
    for e in &mut replayed {
        if e.stream == StreamId::user(&tenant("acme"), &user("visitor"))
            && let Fact::User(UserEvent::CustomerIdentified { external_id, name, email, attributes, .. }) = &mut e.fact
        {
            for p in [external_id, name, email, attributes].into_iter().flatten() {
                *p = Personal::Erased;
            }
        }
    }
    feed(b.as_ref(), P, &replayed, 2).await;
    assert_eq!(users_snapshot(a.as_ref()).await, users_snapshot(b.as_ref()).await);
}

fn people_script() -> Script {
    let mut s = Script::new();
    let settings = TenantSettings::new(vec!["https://shop.example.com".into()], true);
    s.tenant(
        "acme",
        TenantEvent::TenantCreated {
            tenant: tenant("acme"),
            name: "Acme".into(),
            widget_key: "wk_acme_0123456789abcdefghij".into(),
            settings,
        },
    );
    s.tenant(
        "globex",
        TenantEvent::TenantCreated {
            tenant: tenant("globex"),
            name: "Globex".into(),
            widget_key: "wk_globex_0123456789abcdefgh".into(),
            settings: TenantSettings::new(vec![], false),
        },
    );
    s.advance(10).register("acme", "admin1", Role::Admin, Some("boss@acme.example"));
    s.advance(10).register("acme", "ada", Role::Agent, Some("Ada@Example.com"));
    s.advance(10).register("acme", "cust1", Role::Customer, Some("c1@example.org"));
    s.advance(10).register("acme", "visitor", Role::Customer, None);
    s.advance(10).register("globex", "ada", Role::Agent, Some("ada@example.com"));
    s.advance(10).user("acme", "cust1", UserEvent::UserRoleChanged { from: Role::Customer, to: Role::Agent });
    s
}
