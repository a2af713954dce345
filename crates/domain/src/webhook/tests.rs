//! Given/when/then for a tenant's webhooks and their deliveries.

use super::*;
use crate::testing::given;

const WH: &str = "wh0123456789abcdef0123456789abcdef";
const SECRET: &str = "whsec_0123456789abcdefghijklmn";

fn register(url: &str) -> WebhooksCommand {
    WebhooksCommand::Register {
        webhook: WH.into(),
        url: url.into(),
        event_types: vec!["MessagePosted".into(), "ConversationStarted".into(), "MessagePosted".into()],
        secret: Personal::plain(SECRET),
        allowed_hosts: vec![],
    }
}

fn registered() -> WebhooksEvent {
    WebhooksEvent::WebhookRegistered {
        webhook: WH.into(),
        url: "https://hooks.example.com/jamuna".into(),
        event_types: vec!["ConversationStarted".into(), "MessagePosted".into()],
        secret: Personal::plain(SECRET),
    }
}

fn other(n: usize) -> String {
    format!("wh{n:032x}")
}

#[test]
fn a_webhook_is_registered_once_with_its_event_types_deduplicated_and_sorted() {
    given::<Webhooks>([]).when(register("https://hooks.example.com/jamuna")).then(vec![registered()]);
    given::<Webhooks>([registered()]).when(register("https://hooks.example.com/jamuna")).then_err(WebhookError::AlreadyRegistered);
}

#[test]
fn a_removed_webhooks_id_is_not_reused() {
    given::<Webhooks>([registered(), WebhooksEvent::WebhookRemoved { webhook: WH.into() }])
        .when(register("https://hooks.example.com/jamuna"))
        .then_err(WebhookError::AlreadyRegistered);
}

#[test]
fn only_https_urls_to_public_hosts_are_accepted() {
    for (url, err) in [
        ("http://hooks.example.com/", WebhookError::InsecureUrl),
        ("ftp://hooks.example.com/", WebhookError::InvalidUrl),
        ("hooks.example.com", WebhookError::InvalidUrl),
        ("https://user:pw@hooks.example.com/", WebhookError::InvalidUrl),
        ("https://hooks example.com/", WebhookError::InvalidUrl),
        ("https://hooks.example.com:99999/", WebhookError::InvalidUrl),
        ("https://169.254.169.254/latest/meta-data", WebhookError::ForbiddenHost),
        ("http://169.254.169.254/", WebhookError::ForbiddenHost),
        ("http://8.8.8.8/", WebhookError::InsecureUrl),
        ("https://127.0.0.1/", WebhookError::ForbiddenHost),
        ("https://10.1.2.3/", WebhookError::ForbiddenHost),
        ("https://192.168.0.1:8443/", WebhookError::ForbiddenHost),
        ("https://172.16.5.4/", WebhookError::ForbiddenHost),
        ("https://100.64.0.1/", WebhookError::ForbiddenHost),
        ("https://0.0.0.0/", WebhookError::ForbiddenHost),
        ("https://[::1]/", WebhookError::ForbiddenHost),
        ("https://[fe80::1]/", WebhookError::ForbiddenHost),
        ("https://[fd00::1]/", WebhookError::ForbiddenHost),
        ("https://[::ffff:127.0.0.1]/", WebhookError::ForbiddenHost),
        ("https://2130706433/", WebhookError::ForbiddenHost),
        ("https://0x7f000001/", WebhookError::ForbiddenHost),
        ("https://localhost:8080/", WebhookError::ForbiddenHost),
        ("https://api.localhost/", WebhookError::ForbiddenHost),
    ] {
        given::<Webhooks>([]).when(register(url)).then_err(err);
    }
    let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
    given::<Webhooks>([]).when(register(&long)).then_err(WebhookError::UrlTooLong);
    for ok in ["https://hooks.example.com", "https://hooks.example.com:8443/a?b=c", "https://8.8.8.8/x", "https://[2606:4700::1111]/"] {
        assert_eq!(check_url(ok, &[]), Ok(()), "{ok}");
    }
}

#[test]
fn an_allowed_host_may_use_http_and_a_loopback_address() {
    let mut command = register("http://127.0.0.1:4000/hook");
    let WebhooksCommand::Register { allowed_hosts, .. } = &mut command else { unreachable!() };
    *allowed_hosts = vec!["127.0.0.1".into()];
    let events = given::<Webhooks>([]).when(command).then(vec![WebhooksEvent::WebhookRegistered {
        webhook: WH.into(),
        url: "http://127.0.0.1:4000/hook".into(),
        event_types: vec!["ConversationStarted".into(), "MessagePosted".into()],
        secret: Personal::plain(SECRET),
    }]);
    assert_eq!(events.subscriptions().len(), 1);
    // The allow-list names hosts, not every loopback address.
    assert_eq!(check_url("http://localhost:4000/", &["127.0.0.1".into()]), Err(WebhookError::ForbiddenHost));
}

#[test]
fn event_types_and_secrets_are_checked() {
    let with = |types: Vec<&str>, secret: &str| WebhooksCommand::Register {
        webhook: WH.into(),
        url: "https://hooks.example.com/".into(),
        event_types: types.into_iter().map(String::from).collect(),
        secret: Personal::plain(secret),
        allowed_hosts: vec![],
    };
    given::<Webhooks>([]).when(with(vec![], SECRET)).then_err(WebhookError::NoEventTypes);
    given::<Webhooks>([]).when(with(vec!["UserErased"], SECRET)).then_err(WebhookError::UnknownEventType("UserErased".into()));
    given::<Webhooks>([]).when(with(vec!["MessagePosted"], "short")).then_err(WebhookError::InvalidSecret);
}

#[test]
fn a_tenant_has_a_bounded_number_of_webhooks() {
    let full: Vec<WebhooksEvent> = (0..MAX_WEBHOOKS)
        .map(|n| WebhooksEvent::WebhookRegistered {
            webhook: other(n),
            url: "https://hooks.example.com/".into(),
            event_types: vec!["MessagePosted".into()],
            secret: Personal::plain(SECRET),
        })
        .collect();
    given::<Webhooks>(full.clone()).when(register("https://hooks.example.com/jamuna")).then_err(WebhookError::TooManyWebhooks);
    let mut freed = full;
    freed.push(WebhooksEvent::WebhookRemoved { webhook: other(0) });
    given::<Webhooks>(freed).when(register("https://hooks.example.com/jamuna")).then(vec![registered()]);
}

#[test]
fn a_webhook_is_changed_removed_and_its_secret_rotated() {
    let change = WebhooksCommand::Change {
        webhook: WH.into(),
        url: "https://other.example.com/".into(),
        event_types: vec!["HandoffRequested".into()],
        allowed_hosts: vec![],
    };
    given::<Webhooks>([registered()]).when(change.clone()).then(vec![WebhooksEvent::WebhookChanged {
        webhook: WH.into(),
        url: "https://other.example.com/".into(),
        event_types: vec!["HandoffRequested".into()],
    }]);
    given::<Webhooks>([]).when(change).then_err(WebhookError::UnknownWebhook);
    let same = WebhooksCommand::Change {
        webhook: WH.into(),
        url: "https://hooks.example.com/jamuna".into(),
        event_types: vec!["MessagePosted".into(), "ConversationStarted".into()],
        allowed_hosts: vec![],
    };
    given::<Webhooks>([registered()]).when(same).then_nothing();
    let rotate = WebhooksCommand::RotateSecret { webhook: WH.into(), secret: Personal::plain("whsec_another_secret_of_enough_length") };
    given::<Webhooks>([registered()]).when(rotate).then(vec![WebhooksEvent::WebhookSecretRotated {
        webhook: WH.into(),
        secret: Personal::plain("whsec_another_secret_of_enough_length"),
    }]);
    let state = given::<Webhooks>([registered()])
        .when(WebhooksCommand::Remove { webhook: WH.into() })
        .then(vec![WebhooksEvent::WebhookRemoved { webhook: WH.into() }]);
    assert!(state.subscriptions().is_empty());
    given::<Webhooks>([registered(), WebhooksEvent::WebhookRemoved { webhook: WH.into() }])
        .when(WebhooksCommand::Remove { webhook: WH.into() })
        .then_nothing();
    given::<Webhooks>([]).when(WebhooksCommand::Remove { webhook: WH.into() }).then_err(WebhookError::UnknownWebhook);
}

#[test]
fn the_secret_is_personal_data_of_the_webhooks_own_subject() {
    let mut e = registered();
    assert_eq!(e.personal_fields_mut().len(), 1);
    assert_eq!(Webhooks::default().data_subject(&e), Some(secret_subject(WH)));
    assert_eq!(secret_subject(WH).as_str(), format!("webhook-secret-{WH}"));
}

fn delivered(id: &str, attempts: u32) -> DeliveriesEvent {
    DeliveriesEvent::WebhookDelivered {
        delivery_id: id.into(),
        event_id: uuid::Uuid::nil(),
        event_type: "MessagePosted".into(),
        attempts,
        status: 200,
    }
}

fn failed(id: &str) -> DeliveriesEvent {
    DeliveriesEvent::WebhookDeliveryFailed {
        delivery_id: id.into(),
        event_id: uuid::Uuid::nil(),
        event_type: "MessagePosted".into(),
        attempts: 6,
        status: Some(500),
        error: "x".repeat(MAX_ERROR_LEN + 10),
    }
}

#[test]
fn a_delivery_is_recorded_once_delivered() {
    given::<Deliveries>([]).when(RecordDelivery(delivered("d1", 2))).then(vec![delivered("d1", 2)]);
    // Sent again after a restart: already recorded.
    given::<Deliveries>([delivered("d1", 2)]).when(RecordDelivery(delivered("d1", 1))).then_nothing();
}

#[test]
fn a_failed_delivery_keeps_a_bounded_error_and_may_succeed_later() {
    let DeliveriesEvent::WebhookDeliveryFailed { error, .. } = &mut failed("d1") else { unreachable!() };
    let state = given::<Deliveries>([]).when(RecordDelivery(failed("d1"))).then(vec![{
        let mut f = failed("d1");
        if let DeliveriesEvent::WebhookDeliveryFailed { error: e, .. } = &mut f {
            *e = "x".repeat(MAX_ERROR_LEN);
        }
        f
    }]);
    assert!(error.len() > MAX_ERROR_LEN);
    assert!(!state.delivered("d1"));
    let state = given::<Deliveries>([failed("d1")]).when(RecordDelivery(delivered("d1", 1))).then(vec![delivered("d1", 1)]);
    assert!(state.delivered("d1"));
}

#[test]
fn events_round_trip_through_json() {
    for e in [registered(), WebhooksEvent::WebhookRemoved { webhook: WH.into() }] {
        let back: WebhooksEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
    let back: DeliveriesEvent = serde_json::from_str(&serde_json::to_string(&failed("d")).unwrap()).unwrap();
    assert_eq!(back, failed("d"));
}
