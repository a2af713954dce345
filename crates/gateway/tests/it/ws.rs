//! `/api/v1/ws`: authentication (first frame; a URL token refused; origin), `send` →
//! `ack`, pushes to subscribed sockets and staff inboxes, resume after a
//! version, typing, error frames, and tenants kept apart.

use crate::app::*;
use futures::SinkExt;
use jamuna_domain::user::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Frames the server had sent so far, twice over the ping round trip, so a
/// push already routed to the socket is surely among them.
async fn pending(ws: &mut Ws) -> Vec<Value> {
    let mut frames = frames_until_pong(ws).await;
    frames.extend(frames_until_pong(ws).await);
    frames
}

fn versions(frames: &[Value], id: &str) -> Vec<u64> {
    frames.iter().filter(|f| is_event(f, id)).map(|f| f["version"].as_u64().expect("a version")).collect()
}

/// Sends `frame` and returns the `error` frame it is answered with.
async fn refused(ws: &mut Ws, frame: &str) -> Value {
    ws.send(Message::Text(frame.into())).await.expect("the frame is sent");
    let f = frame_where(ws, |f| f["type"] != "presence").await;
    assert_eq!(f["type"], "error", "{frame}: {f}");
    assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()), "{frame}: {f}");
    f
}

/// The `ready` frame, less its `expires_at` (checked to lie in the future).
fn ready_less_expiry(mut ready: Value) -> Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let expires_at = ready.as_object_mut().and_then(|o| o.remove("expires_at"));
    assert!(expires_at.as_ref().and_then(Value::as_u64).is_some_and(|t| t > now), "expires_at in the future: {ready} {expires_at:?}");
    ready
}

#[tokio::test]
async fn a_socket_authenticates_by_its_first_frame_and_is_told_who_it_is() {
    let app = spawn_app().await;
    let customer = app.visitor().await;

    // A token in the URL is refused before the upgrade (URLs end up in proxy logs).
    match tokio_tungstenite::connect_async(app.ws_url(&format!("?token={}", customer.token))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("expected 401, got {other:?}"),
    }

    // The token as the first frame: `ready`, saying when the token expires.
    let mut ws = app.connect("").await;
    send(&mut ws, json!({"type": "auth", "token": customer.token})).await;
    let ready = ready_less_expiry(next_frame(&mut ws).await);
    assert_eq!(ready, json!({"type": "ready", "user_id": customer.id, "tenant": TENANT, "role": "customer"}));
    // Authenticating again as someone else is refused, not a new identity.
    let f = refused(&mut ws, &json!({"type": "auth", "token": app.admin.token}).to_string()).await;
    assert_eq!(f["code"], "forbidden");

    // Staff learn who of the staff is online, themselves included.
    let mut ws = app.connect("").await;
    send(&mut ws, json!({"type": "auth", "token": app.admin.token})).await;
    let ready = ready_less_expiry(next_frame(&mut ws).await);
    assert_eq!(ready, json!({"type": "ready", "user_id": app.admin.id, "tenant": TENANT, "role": "admin"}));
    let presence = next_frame(&mut ws).await;
    assert_eq!(presence, json!({"type": "presence", "online": [app.admin.id]}));

    // A bad token as the first frame: an error frame, then 4001.
    let mut ws = app.connect("").await;
    send(&mut ws, json!({"type": "auth", "token": "garbage"})).await;
    let f = next_frame(&mut ws).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("unauthorized")), "{f}");
    assert_eq!(close_code(&mut ws).await, Some(4001));
    // Any other first frame: 4001.
    let mut ws = app.connect("").await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(close_code(&mut ws).await, Some(4001));
}

#[tokio::test]
async fn a_page_from_a_foreign_origin_may_not_open_a_socket() {
    let app = spawn_app().await;
    let customer = app.visitor().await;
    let with_origin = |origin: &str| {
        let mut request = app.ws_url("").into_client_request().expect("a request");
        request.headers_mut().insert("origin", origin.parse().expect("a header value"));
        request
    };

    // A foreign page: closed with 4003 once the token says which tenant it is for.
    let (mut ws, _) = tokio_tungstenite::connect_async(with_origin("https://evil.example")).await.expect("the socket opens");
    send(&mut ws, json!({"type": "auth", "token": customer.token})).await;
    assert_eq!(close_code(&mut ws).await, Some(4003));
    // The server's own pages may.
    let (mut ws, _) = tokio_tungstenite::connect_async(with_origin(&app.base)).await.expect("the socket opens");
    send(&mut ws, json!({"type": "auth", "token": customer.token})).await;
    assert_eq!(next_frame(&mut ws).await["type"], "ready");
}

#[tokio::test]
async fn a_sent_message_is_acked_and_every_change_is_pushed_to_the_subscribed_sockets_only() {
    let app = spawn_app().await;
    let agent = app.staff(Role::Agent, "Ana").await;
    let customer = app.visitor().await;
    let stranger = app.visitor().await;
    let id = app.new_conversation(&customer).await;

    let mut mine = app.socket(&customer).await;
    send(&mut mine, json!({"type": "subscribe", "conversation_id": id, "after_version": 1})).await;
    let mut staff = app.socket(&agent).await;
    send(&mut staff, json!({"type": "subscribe", "conversation_id": id, "after_version": 1})).await;
    let mut other = app.socket(&stranger).await;
    assert_eq!(pending(&mut mine).await, Vec::<Value>::new(), "nothing after version 1 yet");
    assert_eq!(pending(&mut staff).await, Vec::<Value>::new());

    send(&mut mine, json!({"type": "send", "conversation_id": id, "client_message_id": "w1", "text": "Is anyone there?"})).await;
    let ack = frame_where(&mut mine, |f| f["type"] == "ack").await;
    assert_eq!(ack, json!({"type": "ack", "conversation_id": id, "client_message_id": "w1", "version": 2, "duplicate": false}));
    let pushed = frame_where(&mut staff, |f| is_event(f, &id)).await;
    assert_eq!((pushed["version"].as_u64(), event_type(&pushed)), (Some(2), "MessagePosted"));
    assert_eq!(pushed["event"]["text"], "Is anyone there?");
    assert!(pushed["position"].as_u64().is_some() && pushed["occurred_at"].is_string(), "{pushed}");
    let echoed = frame_where(&mut mine, |f| is_event(f, &id)).await;
    assert_eq!(echoed["version"], 2, "the sender's own message comes back as an event too");

    // The same client message id again: acked as a duplicate, nothing new pushed.
    send(&mut mine, json!({"type": "send", "conversation_id": id, "client_message_id": "w1", "text": "Is anyone there?"})).await;
    let ack = frame_where(&mut mine, |f| f["type"] == "ack").await;
    assert_eq!((ack["version"].as_u64(), ack["duplicate"].as_bool()), (Some(2), Some(true)));

    // Changes made over REST reach the sockets too, in order.
    app.assign(&agent.token, &id, None).await;
    app.post_message(&agent.token, &id, "a1", "Yes, Ana here.").await;
    let assigned = frame_where(&mut mine, |f| is_event(f, &id)).await;
    assert_eq!((assigned["version"].as_u64(), event_type(&assigned)), (Some(3), "AgentAssigned"));
    let reply = frame_where(&mut mine, |f| is_event(f, &id)).await;
    assert_eq!((reply["version"].as_u64(), reply["event"]["author"]["kind"].as_str()), (Some(4), Some("agent")));
    assert_eq!(versions(&pending(&mut staff).await, &id), [3, 4]);
    assert_eq!(pending(&mut other).await, Vec::<Value>::new(), "a socket that did not subscribe gets nothing");

    // After `unsubscribe`, nothing more.
    send(&mut staff, json!({"type": "unsubscribe", "conversation_id": id})).await;
    assert_eq!(pending(&mut staff).await, Vec::<Value>::new());
    app.resolve(&agent.token, &id).await;
    let resolved = frame_where(&mut mine, |f| is_event(f, &id)).await;
    assert_eq!((resolved["version"].as_u64(), event_type(&resolved)), (Some(5), "ConversationResolved"));
    assert_eq!(pending(&mut staff).await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_resubscribing_socket_gets_exactly_what_it_has_not_seen() {
    let app = spawn_app().await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;
    app.handoff(&customer.token, &id).await;
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let (s, body) = app.post_message(&customer.token, &id, &format!("m{i}"), text).await;
        assert_eq!(s, 201, "{body}");
    }

    // From the start; from a version; from the last version.
    let mut ws = app.socket(&customer).await;
    send(&mut ws, json!({"type": "subscribe", "conversation_id": id})).await;
    assert_eq!(versions(&pending(&mut ws).await, &id), [1, 2, 3, 4, 5]);
    let mut ws = app.socket(&customer).await;
    send(&mut ws, json!({"type": "subscribe", "conversation_id": id, "after_version": 3})).await;
    let frames = pending(&mut ws).await;
    assert_eq!(versions(&frames, &id), [4, 5]);
    assert_eq!(frames.iter().map(|f| f["event"]["text"].as_str().unwrap_or_default()).collect::<Vec<_>>(), ["two", "three"]);
    // Subscribing again from further back sends nothing twice.
    send(&mut ws, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    assert_eq!(pending(&mut ws).await, Vec::<Value>::new());
    let mut late = app.socket(&customer).await;
    send(&mut late, json!({"type": "subscribe", "conversation_id": id, "after_version": 5})).await;
    assert_eq!(pending(&mut late).await, Vec::<Value>::new());

    // Then live events follow, once each.
    send(&mut ws, json!({"type": "send", "conversation_id": id, "client_message_id": "m9", "text": "four"})).await;
    let live = frame_where(&mut late, |f| is_event(f, &id)).await;
    assert_eq!((live["version"].as_u64(), live["event"]["text"].as_str()), (Some(6), Some("four")));
    let frames = pending(&mut ws).await;
    assert_eq!(versions(&frames, &id), [6]);
    assert_eq!(frames.iter().filter(|f| f["type"] == "ack").count(), 1, "{frames:?}");
    assert_eq!(pending(&mut late).await, Vec::<Value>::new());
}

#[tokio::test]
async fn staff_inboxes_get_every_conversation_of_their_tenant_and_typing_reaches_the_others() {
    let app = spawn_app().await;
    let agent = app.staff(Role::Agent, "Ana").await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;

    let mut inbox = app.socket(&agent).await;
    send(&mut inbox, json!({"type": "subscribe_inbox"})).await;
    let mut own = app.socket(&customer).await;
    let f = refused(&mut own, r#"{"type":"subscribe_inbox"}"#).await;
    assert_eq!(f["code"], "forbidden", "customers have no inbox");

    // A new conversation and a message, pushed to the inbox without a subscription.
    let second = app.new_conversation(&customer).await;
    app.post_message(&customer.token, &id, "i1", "hello?").await;
    let started = frame_where(&mut inbox, |f| is_event(f, &second)).await;
    assert_eq!((started["version"].as_u64(), event_type(&started)), (Some(1), "ConversationStarted"));
    let posted = frame_where(&mut inbox, |f| is_event(f, &id)).await;
    assert_eq!((posted["version"].as_u64(), event_type(&posted)), (Some(2), "MessagePosted"));

    // Typing needs a subscription, and reaches the other subscribers, not the typist.
    let f = refused(&mut own, &json!({"type": "typing", "conversation_id": id, "typing": true}).to_string()).await;
    assert_eq!(f["code"], "bad_request");
    send(&mut own, json!({"type": "subscribe", "conversation_id": id, "after_version": 2})).await;
    send(&mut inbox, json!({"type": "subscribe", "conversation_id": id, "after_version": 2})).await;
    assert_eq!(pending(&mut inbox).await, Vec::<Value>::new());
    send(&mut own, json!({"type": "typing", "conversation_id": id, "typing": true})).await;
    let typing = frame_where(&mut inbox, |f| f["type"] == "typing").await;
    assert_eq!(typing, json!({"type": "typing", "conversation_id": id, "user_id": customer.id, "role": "customer", "typing": true}));
    assert_eq!(pending(&mut own).await, Vec::<Value>::new(), "the typist does not hear itself");
}

#[tokio::test]
async fn bad_frames_are_answered_with_error_frames_and_nothing_is_stored() {
    let app = spawn_app().await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;
    let mut ws = app.socket(&customer).await;

    for (frame, code) in [
        (r#"{"type":"ping","traceparent":7}"#.to_owned(), "invalid_frame"),
        (r#"{"type":"subscribe"}"#.to_owned(), "invalid_frame"),
        (r#"{"type":"subscribe","conversation_id":"no.such"}"#.to_owned(), "invalid_frame"),
        (r#"["type","ping"]"#.to_owned(), "invalid_frame"),
        (r#"{"type":"subscribe","conversation_id":"0197f000-0000-7000-8000-000000000000"}"#.to_owned(), "not_found"),
        (json!({"type": "send", "conversation_id": id, "client_message_id": "b1", "text": "x".repeat(4_001)}).to_string(), "bad_request"),
        (json!({"type": "send", "conversation_id": id, "client_message_id": "not valid!", "text": "hi"}).to_string(), "bad_request"),
        (
            json!({"type": "send", "conversation_id": "0197f000-0000-7000-8000-000000000000", "client_message_id": "b2", "text": "hi"})
                .to_string(),
            "not_found",
        ),
    ] {
        let f = refused(&mut ws, &frame).await;
        assert_eq!(f["code"], code, "{frame}: {f}");
    }
    // The socket still serves, and the conversation holds nothing new.
    send(&mut ws, json!({"type": "subscribe", "conversation_id": id})).await;
    assert_eq!(versions(&pending(&mut ws).await, &id), [1]);
    app.resolve(&customer.token, &id).await;
    frame_where(&mut ws, |f| is_event(f, &id) && event_type(f) == "ConversationResolved").await;
    let f = refused(&mut ws, &json!({"type": "send", "conversation_id": id, "client_message_id": "b3", "text": "hi"}).to_string()).await;
    assert_eq!(f["code"], "already_resolved", "a business refusal carries its rule");
}

#[tokio::test]
async fn another_tenants_conversations_are_refused_and_never_pushed() {
    let app = spawn_app().await;
    let customer = app.visitor().await;
    let id = app.new_conversation(&customer).await;
    let intruder = app.other_tenant_admin("globex").await;

    let mut ws = app.socket(&intruder).await;
    let f = refused(&mut ws, &json!({"type": "subscribe", "conversation_id": id, "after_version": 0}).to_string()).await;
    assert_eq!(f["code"], "not_found");
    let f = refused(&mut ws, &json!({"type": "send", "conversation_id": id, "client_message_id": "x1", "text": "hello"}).to_string()).await;
    assert_eq!(f["code"], "not_found");
    let f = refused(&mut ws, &json!({"type": "typing", "conversation_id": id, "typing": true}).to_string()).await;
    assert_eq!(f["code"], "bad_request");
    send(&mut ws, json!({"type": "subscribe_inbox"})).await;

    // acme's activity reaches acme's subscribers, and nothing of it globex's inbox.
    let mut own = app.socket(&customer).await;
    send(&mut own, json!({"type": "subscribe", "conversation_id": id, "after_version": 1})).await;
    app.post_message(&customer.token, &id, "c1", "private matter").await;
    let posted = frame_where(&mut own, |f| is_event(f, &id)).await;
    assert_eq!(posted["version"], 2);
    assert_eq!(pending(&mut ws).await, Vec::<Value>::new());
    let (_, detail) = app.conversation(&customer.token, &id).await;
    assert_eq!(detail["version"], 2, "the intruder stored nothing: {detail}");
}
