//! Who holds an address: users from before address claims keep their ids and
//! their addresses, and a registration or an erase that stopped half way is
//! finished by its retry.

use crate::app::*;
use jamuna_commands::handler::CommandContext;
use jamuna_domain::email_claim::{EmailClaim, EmailClaimCommand, EmailClaimEvent};
use jamuna_domain::user::{Email, Role, User, UserCommand};
use jamuna_domain::{Personal, StreamId, UserId};
use jamuna_gateway::identity;
use serde_json::Value;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn erase(app: &TestApp, id: &str) -> u16 {
    app.call(reqwest::Method::DELETE, &format!("/api/v1/users/{id}"), Some(&app.admin.token), None).await.0
}

/// The holders of every claim ever made on the address, oldest first.
async fn holders(app: &TestApp, email: &Email) -> Vec<Personal> {
    let stream = identity::claim_stream(&app.commands, &app.tenant, email).await.expect("the claim's stream");
    let mut out = Vec::new();
    for r in app.commands.log().read_stream(&stream, 0).await.expect("the claim") {
        if let EmailClaimEvent::EmailClaimed { user, .. } = app.commands.sealer().open(&r).await.expect("opens").data {
            out.push(user);
        }
    }
    out
}

#[tokio::test]
async fn a_user_from_before_claims_keeps_their_address_until_erased() {
    let app = spawn_app().await;
    let email = Email::parse("old.timer@acme.example").unwrap();
    // Registered as Jamuna did before address claims: the id is a hash of tenant and address.
    let old = identity::legacy_user_id(&app.tenant, &email);
    let register = UserCommand::Register {
        tenant: app.tenant.clone(),
        user_id: old.clone(),
        role: Role::Agent,
        name: None,
        email: Some(email.clone()),
        password_hash: None,
    };
    let ctx = CommandContext::new(app.tenant.clone(), chrono::Utc::now());
    app.commands.execute::<User>(&StreamId::user(&app.tenant, &old), &register, &ctx).await.unwrap();

    let (s, body) = app.create_user(&app.admin.token, "agent", "Copy", email.as_str(), "a strong password").await;
    assert_eq!((s, code(&body)), (409, "already_registered"), "{body}");

    assert_eq!(erase(&app, old.as_str()).await, 204);
    let (s, body) = app.create_user(&app.admin.token, "agent", "New", email.as_str(), "a strong password").await;
    assert_eq!(s, 201, "{body}");
    assert_ne!(body["id"].as_str(), Some(old.as_str()), "a new id");
    assert_eq!(erase(&app, old.as_str()).await, 204, "erasing the old user again changes nothing");
    let (s, body) = app.create_user(&app.admin.token, "agent", "Third", email.as_str(), "a strong password").await;
    assert_eq!((s, code(&body)), (409, "already_registered"), "still the new user's: {body}");
}

#[tokio::test]
async fn a_registration_or_an_erase_stopped_half_way_is_finished_by_its_retry() {
    let app = spawn_app().await;
    let email = Email::parse("half.way@acme.example").unwrap();
    // A registration that stopped after its claim: the user never registered.
    let claimed = UserId::from_uuid(uuid::Uuid::now_v7());
    let stream = identity::claim_stream(&app.commands, &app.tenant, &email).await.unwrap();
    let claim = EmailClaimCommand::Claim { user: claimed.clone(), subject: UserId::parse("claim-test").unwrap() };
    let ctx = CommandContext::new(app.tenant.clone(), chrono::Utc::now());
    app.commands.execute::<EmailClaim>(&stream, &claim, &ctx).await.unwrap();

    let (s, body) = app.create_user(&app.admin.token, "agent", "Half", email.as_str(), "a strong password").await;
    assert_eq!((s, body["id"].as_str()), (201, Some(claimed.as_str())), "the retry finishes the claimed registration: {body}");

    // An erase that stopped after releasing the claim: the user is still live.
    identity::release(&app.commands, &ctx, &app.tenant, &claimed).await.unwrap();
    assert!(app.commands.load::<EmailClaim>(&stream).await.unwrap().current().is_none());
    assert!(!app.commands.load::<User>(&StreamId::user(&app.tenant, &claimed)).await.unwrap().is_erased());
    assert_eq!(erase(&app, claimed.as_str()).await, 204, "the retry finishes the erase");
    assert!(app.commands.load::<User>(&StreamId::user(&app.tenant, &claimed)).await.unwrap().is_erased());
    assert_eq!(holders(&app, &email).await, vec![Personal::Erased], "the old claim no longer says whose it was");

    let (s, body) = app.create_user(&app.admin.token, "agent", "Next", email.as_str(), "a strong password").await;
    assert_eq!(s, 201, "{body}");
    let next = body["id"].as_str().expect("an id");
    assert_ne!(next, claimed.as_str());
    assert_eq!(holders(&app, &email).await, vec![Personal::Erased, Personal::plain(next)]);
}
