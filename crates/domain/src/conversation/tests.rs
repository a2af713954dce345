use super::*;
use crate::testing::given;
use crate::{ConversationId, MessageText};

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}
fn customer() -> UserId {
    UserId::parse("cust").unwrap()
}
fn agent_id() -> UserId {
    UserId::parse("agent").unwrap()
}
fn started() -> ConversationEvent {
    ConversationEvent::ConversationStarted {
        tenant: tenant(),
        conversation_id: ConversationId::parse("c1").unwrap(),
        customer: customer(),
        channel: Channel::Web,
    }
}
fn text(s: &str) -> MessageText {
    MessageText::parse(s).unwrap()
}
fn cmid(s: &str) -> Option<ClientMessageId> {
    Some(ClientMessageId::parse(s).unwrap())
}
fn customer_says(s: &str, id: &str) -> ConversationEvent {
    ConversationEvent::MessagePosted {
        author: Author::Customer,
        text: Personal::plain(s),
        client_message_id: cmid(id),
        attachments: vec![],
    }
}
fn post(s: &str, id: &str) -> ConversationCommand {
    ConversationCommand::PostMessage { author: Author::Customer, text: Some(text(s)), client_message_id: cmid(id), attachments: vec![] }
}
fn answer(in_reply_to: u64) -> ConversationCommand {
    ConversationCommand::AnswerMessage {
        in_reply_to,
        text: text("Cards arrive in 5 days."),
        intent: Some("card_arrival".into()),
        confidence: 0.9,
        sources: vec![],
        why: None,
    }
}
fn bot_answered(in_reply_to: u64) -> ConversationEvent {
    ConversationEvent::BotAnswered {
        in_reply_to,
        text: Personal::plain("Cards arrive in 5 days."),
        intent: Some("card_arrival".into()),
        confidence: 0.9,
        sources: vec![],
        why: None,
    }
}
fn assignee(role: Role, tenant: &str) -> Assignee {
    Assignee { id: agent_id(), tenant: TenantId::parse(tenant).unwrap(), role }
}

#[test]
fn a_conversation_starts_once() {
    let state = given::<Conversation>([])
        .when(ConversationCommand::Start {
            tenant: tenant(),
            conversation_id: ConversationId::parse("c1").unwrap(),
            customer: customer(),
            channel: Channel::Web,
        })
        .then(vec![started()]);
    assert_eq!(state.status(), Some(Status::Open));
    given::<Conversation>([started()])
        .when(ConversationCommand::Start {
            tenant: tenant(),
            conversation_id: ConversationId::parse("c1").unwrap(),
            customer: customer(),
            channel: Channel::Web,
        })
        .then_err(ConversationError::AlreadyStarted);
}

#[test]
fn nothing_happens_before_the_start() {
    given::<Conversation>([]).when(post("hi", "m1")).then_err(ConversationError::NotStarted);
    given::<Conversation>([]).when(ConversationCommand::Resolve { by: None }).then_err(ConversationError::NotStarted);
}

#[test]
fn a_customer_message_is_posted() {
    given::<Conversation>([started()]).when(post("where is my card?", "m1")).then(vec![customer_says("where is my card?", "m1")]);
}

#[test]
fn a_resolved_conversation_takes_no_message_until_reopened() {
    let resolved = [started(), ConversationEvent::ConversationResolved { by: None }];
    given::<Conversation>(resolved.clone()).when(post("hello?", "m1")).then_err(ConversationError::AlreadyResolved);
    given::<Conversation>(resolved.clone())
        .when(ConversationCommand::Reopen { by: Some(customer()) })
        .then(vec![ConversationEvent::ConversationReopened { by: Some(customer()) }]);
    let mut reopened = resolved.to_vec();
    reopened.push(ConversationEvent::ConversationReopened { by: None });
    given::<Conversation>(reopened).when(post("hello?", "m1")).then(vec![customer_says("hello?", "m1")]);
}

#[test]
fn a_retried_client_message_id_produces_nothing() {
    let state = given::<Conversation>([started(), customer_says("hi", "m1")]);
    state.when(post("hi", "m1")).then_nothing();
    // Even after resolving, a late retry is acknowledged rather than refused.
    given::<Conversation>([started(), customer_says("hi", "m1"), ConversationEvent::ConversationResolved { by: None }])
        .when(post("hi", "m1"))
        .then_nothing();
}

#[test]
fn the_version_of_a_deduplicated_message_is_known() {
    let state =
        given::<Conversation>([started(), customer_says("hi", "m1")]).when(post("again", "m2")).then(vec![customer_says("again", "m2")]);
    assert_eq!(state.client_message_version(&ClientMessageId::parse("m1").unwrap()), Some(2));
    assert_eq!(state.client_message_version(&ClientMessageId::parse("m2").unwrap()), Some(3));
}

#[test]
fn only_agents_and_admins_of_the_same_tenant_are_assigned() {
    given::<Conversation>([started()])
        .when(ConversationCommand::AssignAgent { agent: assignee(Role::Customer, "acme") })
        .then_err(ConversationError::NotAnAgent);
    given::<Conversation>([started()])
        .when(ConversationCommand::AssignAgent { agent: assignee(Role::Agent, "globex") })
        .then_err(ConversationError::OtherTenant);
    given::<Conversation>([started()])
        .when(ConversationCommand::AssignAgent { agent: assignee(Role::Admin, "acme") })
        .then(vec![ConversationEvent::AgentAssigned { agent: agent_id() }]);
    given::<Conversation>([started(), ConversationEvent::AgentAssigned { agent: agent_id() }])
        .when(ConversationCommand::AssignAgent { agent: assignee(Role::Agent, "acme") })
        .then_nothing();
}

#[test]
fn the_bot_answers_a_customer_message_once() {
    given::<Conversation>([started(), customer_says("where is my card?", "m1")]).when(answer(2)).then(vec![bot_answered(2)]);
    given::<Conversation>([started(), customer_says("where is my card?", "m1"), bot_answered(2)]).when(answer(2)).then_nothing();
    given::<Conversation>([started()]).when(answer(1)).then_err(ConversationError::UnknownMessage(1));
}

#[test]
fn the_bot_stays_silent_once_a_human_is_involved() {
    let asked = customer_says("where is my card?", "m1");
    for human in [
        ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None },
        ConversationEvent::AgentAssigned { agent: agent_id() },
        ConversationEvent::MessagePosted {
            author: Author::Agent { id: agent_id() },
            text: Personal::plain("I'm on it"),
            client_message_id: None,
            attachments: vec![],
        },
    ] {
        given::<Conversation>([started(), asked.clone(), human]).when(answer(2)).then_err(ConversationError::HandedToHuman);
    }
}

#[test]
fn a_handoff_waits_for_a_human_and_is_requested_once() {
    let state = given::<Conversation>([started()])
        .when(ConversationCommand::RequestHandoff { reason: HandoffReason::LowConfidence, why: None })
        .then(vec![ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None }]);
    assert_eq!(state.status(), Some(Status::Pending));
    given::<Conversation>([started(), ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None }])
        .when(ConversationCommand::RequestHandoff { reason: HandoffReason::CustomerAsked, why: None })
        .then_nothing();
    let state = given::<Conversation>([
        started(),
        ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None },
        ConversationEvent::AgentAssigned { agent: agent_id() },
    ]);
    let state = state.when(ConversationCommand::Resolve { by: None }).then(vec![ConversationEvent::ConversationResolved { by: None }]);
    assert_eq!(state.status(), Some(Status::Resolved));
}

#[test]
fn resolving_twice_and_reopening_an_open_conversation_are_refused() {
    given::<Conversation>([started(), ConversationEvent::ConversationResolved { by: None }])
        .when(ConversationCommand::Resolve { by: None })
        .then_err(ConversationError::AlreadyResolved);
    given::<Conversation>([started()]).when(ConversationCommand::Reopen { by: None }).then_err(ConversationError::NotResolved);
}

#[test]
fn csat_is_given_on_a_resolved_conversation_with_a_score_from_1_to_5() {
    let csat = |score| ConversationCommand::GiveFeedback { feedback: Feedback::Csat { score, comment: None } };
    given::<Conversation>([started()]).when(csat(5)).then_err(ConversationError::NotResolved);
    let resolved = [started(), ConversationEvent::ConversationResolved { by: None }];
    given::<Conversation>(resolved.clone()).when(csat(0)).then_err(ConversationError::InvalidScore(0));
    given::<Conversation>(resolved.clone()).when(csat(6)).then_err(ConversationError::InvalidScore(6));
    let state = given::<Conversation>(resolved)
        .when(csat(4))
        .then(vec![ConversationEvent::FeedbackGiven { feedback: Feedback::Csat { score: 4, comment: None } }]);
    assert_eq!(state.csat(), Some(4));
}

#[test]
fn answer_feedback_names_a_bot_answer() {
    let fb = |v| ConversationCommand::GiveFeedback { feedback: Feedback::Answer { answer_version: v, helpful: false } };
    let history = [started(), customer_says("card?", "m1"), bot_answered(2)];
    given::<Conversation>(history.clone()).when(fb(2)).then_err(ConversationError::UnknownAnswer(2));
    given::<Conversation>(history).when(fb(3)).then(vec![
        ConversationEvent::FeedbackGiven { feedback: Feedback::Answer { answer_version: 3, helpful: false } },
        ConversationEvent::HandoffRequested { reason: HandoffReason::NegativeFeedback, why: None },
    ]);
}

fn thumbs(helpful: bool) -> ConversationCommand {
    ConversationCommand::GiveFeedback { feedback: Feedback::Answer { answer_version: 3, helpful } }
}

#[test]
fn a_thumbs_down_on_a_bot_answer_hands_the_conversation_to_a_human() {
    let state = given::<Conversation>([started(), customer_says("card?", "m1"), bot_answered(2)]).when(thumbs(false)).then(vec![
        ConversationEvent::FeedbackGiven { feedback: Feedback::Answer { answer_version: 3, helpful: false } },
        ConversationEvent::HandoffRequested { reason: HandoffReason::NegativeFeedback, why: None },
    ]);
    assert!(state.human_involved());
    assert_eq!(state.status(), Some(Status::Pending));
}

#[test]
fn a_thumbs_up_changes_nothing_but_the_feedback() {
    let state = given::<Conversation>([started(), customer_says("card?", "m1"), bot_answered(2)])
        .when(thumbs(true))
        .then(vec![ConversationEvent::FeedbackGiven { feedback: Feedback::Answer { answer_version: 3, helpful: true } }]);
    assert!(!state.human_involved());
    assert_eq!(state.status(), Some(Status::Open));
}

#[test]
fn a_thumbs_down_once_a_human_is_involved_or_resolved_is_only_feedback() {
    let answered = [started(), customer_says("card?", "m1"), bot_answered(2)];
    let only_feedback = vec![ConversationEvent::FeedbackGiven { feedback: Feedback::Answer { answer_version: 3, helpful: false } }];
    let mut handed = answered.to_vec();
    handed.push(ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None });
    given::<Conversation>(handed).when(thumbs(false)).then(only_feedback.clone());
    let mut assigned = answered.to_vec();
    assigned.push(ConversationEvent::AgentAssigned { agent: agent_id() });
    given::<Conversation>(assigned).when(thumbs(false)).then(only_feedback.clone());
    let mut resolved = answered.to_vec();
    resolved.push(ConversationEvent::ConversationResolved { by: None });
    given::<Conversation>(resolved).when(thumbs(false)).then(only_feedback);
}

#[test]
fn tags_change_only_when_something_changes() {
    let billing = Tag::parse(" Billing ").unwrap();
    assert_eq!(billing.as_str(), "billing");
    let state = given::<Conversation>([started()])
        .when(ConversationCommand::ChangeTags { add: vec![billing.clone()], remove: vec![] })
        .then(vec![ConversationEvent::TagsChanged { added: vec![billing.clone()], removed: vec![] }]);
    assert!(state.tags().contains(&billing));
    given::<Conversation>([started(), ConversationEvent::TagsChanged { added: vec![billing.clone()], removed: vec![] }])
        .when(ConversationCommand::ChangeTags { add: vec![billing], remove: vec![] })
        .then_nothing();
    assert!(Tag::parse("   ").is_err());
}

#[test]
fn events_serialise_with_a_type_tag() {
    let json = serde_json::to_value(customer_says("hi", "m1")).unwrap();
    assert_eq!(json["type"], "MessagePosted");
    assert_eq!(json["author"]["kind"], "customer");
    let back: ConversationEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, customer_says("hi", "m1"));
}

#[test]
fn a_bot_answer_with_a_non_finite_confidence_or_score_is_refused() {
    // JSON has no NaN or infinity: such an event would be stored as `null` and never read back.
    let with = |confidence: f32, score: f32| ConversationCommand::AnswerMessage {
        in_reply_to: 2,
        text: text("Cards arrive in 5 days."),
        intent: None,
        confidence,
        sources: vec![Source { article_id: ArticleId::parse("a").unwrap(), title: "t".into(), passage: "p".into(), score }],
        why: None,
    };
    let asked = [started(), customer_says("Where is my card?", "m1")];
    for (confidence, score) in [(f32::NAN, 0.5), (f32::INFINITY, 0.5), (0.5, f32::NAN), (0.5, f32::NEG_INFINITY)] {
        given::<Conversation>(asked.clone()).when(with(confidence, score)).then_err(ConversationError::NotFinite);
    }
}

#[test]
fn a_handoff_by_staff_is_recorded_as_taken_over_not_as_asked_by_the_customer() {
    for role in [Role::Agent, Role::Admin] {
        let state = given::<Conversation>([started(), customer_says("where is my card?", "m1")])
            .when(ConversationCommand::RequestHandoff { reason: HandoffReason::asked_by(role), why: None })
            .then(vec![ConversationEvent::HandoffRequested { reason: HandoffReason::AgentTookOver, why: None }]);
        assert!(state.human_involved());
    }
    given::<Conversation>([started()])
        .when(ConversationCommand::RequestHandoff { reason: HandoffReason::asked_by(Role::Customer), why: None })
        .then(vec![ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None }]);
}

#[test]
fn handoff_reasons_keep_their_wire_names() {
    let wire = |r: HandoffReason| serde_json::to_value(r).unwrap();
    assert_eq!(wire(HandoffReason::CustomerAsked), "customer_asked");
    assert_eq!(wire(HandoffReason::AgentTookOver), "agent_took_over");
    assert_eq!(wire(HandoffReason::OutOfScope), "out_of_scope");
    let old: ConversationEvent = serde_json::from_str(r#"{"type":"HandoffRequested","reason":"customer_asked"}"#).unwrap();
    assert_eq!(
        old,
        ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None },
        "old events read as they were"
    );
}

fn why(basis: Basis) -> DecisionWhy {
    DecisionWhy::new(
        basis,
        DecisionScores {
            confidence: Some(0.91),
            threshold: Some(0.56),
            head_probability: Some(0.97),
            nearest_similarity: Some(0.83),
            mean_similarity: Some(0.71),
            mahalanobis: Some(1.2),
            confidence_if_head_certain: Some(0.93),
            ..DecisionScores::default()
        },
    )
}

#[test]
fn the_bot_answer_keeps_why_it_answered() {
    let with_why = ConversationCommand::AnswerMessage {
        in_reply_to: 2,
        text: text("Cards arrive in 5 days."),
        intent: Some("card_arrival".into()),
        confidence: 0.9,
        sources: vec![],
        why: Some(why(Basis::IntentHead)),
    };
    given::<Conversation>([started(), customer_says("Where is my card?", "m1")]).when(with_why).then(vec![
        ConversationEvent::BotAnswered {
            in_reply_to: 2,
            text: Personal::plain("Cards arrive in 5 days."),
            intent: Some("card_arrival".into()),
            confidence: 0.9,
            sources: vec![],
            why: Some(why(Basis::IntentHead)),
        },
    ]);
}

#[test]
fn the_bot_handoff_keeps_why_it_handed_off() {
    let state = given::<Conversation>([started(), customer_says("What is the meaning of life?", "m1")])
        .when(ConversationCommand::RequestHandoff { reason: HandoffReason::LowConfidence, why: Some(why(Basis::OutOfScopeDistance)) })
        .then(vec![ConversationEvent::HandoffRequested {
            reason: HandoffReason::LowConfidence,
            why: Some(why(Basis::OutOfScopeDistance)),
        }]);
    assert!(state.human_involved());
}

#[test]
fn a_why_with_a_non_finite_score_is_refused() {
    let mut bad = why(Basis::OutOfScopeDistance);
    bad.scores.mahalanobis = Some(f32::NAN);
    let asked = [started(), customer_says("Where is my card?", "m1")];
    given::<Conversation>(asked.clone())
        .when(ConversationCommand::RequestHandoff { reason: HandoffReason::LowConfidence, why: Some(bad.clone()) })
        .then_err(ConversationError::NotFinite);
    let answer = ConversationCommand::AnswerMessage {
        in_reply_to: 2,
        text: text("Cards arrive in 5 days."),
        intent: None,
        confidence: 0.9,
        sources: vec![],
        why: Some(bad),
    };
    given::<Conversation>(asked).when(answer).then_err(ConversationError::NotFinite);
}

#[test]
fn events_stored_before_the_why_load_unchanged_and_new_ones_round_trip() {
    // As stored before `why` existed.
    let old_answer =
        r#"{"type":"BotAnswered","in_reply_to":2,"text":"Cards arrive in 5 days.","intent":"card_arrival","confidence":0.9,"sources":[]}"#;
    let old_handoff = r#"{"type":"HandoffRequested","reason":"low_confidence"}"#;
    let stored = |event_type: &str, json: &str| -> ConversationEvent {
        crate::upcast::decode(event_type, 1, serde_json::from_str(json).unwrap()).unwrap()
    };
    let answered = stored("BotAnswered", old_answer);
    assert_eq!(answered, bot_answered(2));
    let handed = stored("HandoffRequested", old_handoff);
    assert_eq!(handed, ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None });
    // Without a why they are written as before.
    assert_eq!(serde_json::to_value(&handed).unwrap(), serde_json::from_str::<serde_json::Value>(old_handoff).unwrap());
    assert!(serde_json::to_value(&answered).unwrap().get("why").is_none());
    // With one, it reads back as itself.
    let new = ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: Some(why(Basis::OutOfScopeDistance)) };
    let json = serde_json::to_string(&new).unwrap();
    assert!(json.contains(r#""basis":"out_of_scope_distance""#), "{json}");
    assert_eq!(serde_json::from_str::<ConversationEvent>(&json).unwrap(), new);
}

#[test]
fn a_handoff_for_an_out_of_scope_example_is_recorded_and_round_trips() {
    let handed = ConversationEvent::HandoffRequested { reason: HandoffReason::OutOfScope, why: Some(why(Basis::OutOfScopeExample)) };
    let state = given::<Conversation>([started()])
        .when(ConversationCommand::RequestHandoff { reason: HandoffReason::OutOfScope, why: Some(why(Basis::OutOfScopeExample)) })
        .then(vec![handed.clone()]);
    assert_eq!(state.status(), Some(Status::Pending));
    let json = serde_json::to_value(&handed).unwrap();
    assert_eq!((&json["reason"], &json["why"]["basis"]), (&serde_json::json!("out_of_scope"), &serde_json::json!("out_of_scope_example")));
    assert_eq!(serde_json::from_value::<ConversationEvent>(json).unwrap(), handed);
}

fn file(id: &str) -> crate::attachment::Attachment {
    crate::attachment::Attachment {
        id: crate::AttachmentId::parse(id).unwrap(),
        name: Personal::plain(format!("{id}.png")),
        content_type: crate::attachment::ContentType::Png,
        size: 10,
    }
}
fn post_files(s: Option<&str>, id: &str, files: &[&str]) -> ConversationCommand {
    ConversationCommand::PostMessage {
        author: Author::Customer,
        text: s.map(text),
        client_message_id: cmid(id),
        attachments: files.iter().map(|f| file(f)).collect(),
    }
}
fn customer_sent_files(s: &str, id: &str, files: &[&str]) -> ConversationEvent {
    ConversationEvent::MessagePosted {
        author: Author::Customer,
        text: Personal::plain(s),
        client_message_id: cmid(id),
        attachments: files.iter().map(|f| file(f)).collect(),
    }
}

// --- private notes (issue 19, item 1) ---

fn staff(id: &str, role: Role, tenant: &str) -> Assignee {
    Assignee { id: UserId::parse(id).unwrap(), tenant: TenantId::parse(tenant).unwrap(), role }
}
fn note(text_: &str, mentions: Vec<Assignee>) -> ConversationCommand {
    ConversationCommand::AddNote { author: assignee(Role::Agent, "acme"), text: text(text_), mentions }
}
fn noted(text_: &str, mentions: &[&str]) -> ConversationEvent {
    ConversationEvent::NoteAdded {
        author: agent_id(),
        text: Personal::plain(text_),
        mentions: mentions.iter().map(|m| UserId::parse(*m).unwrap()).collect(),
    }
}

#[test]
fn a_message_may_be_attachments_only() {
    given::<Conversation>([started()]).when(post_files(None, "m1", &["f1"])).then(vec![customer_sent_files("", "m1", &["f1"])]);
    given::<Conversation>([started()]).when(post_files(Some("my receipt"), "m1", &["f1", "f2"])).then(vec![customer_sent_files(
        "my receipt",
        "m1",
        &["f1", "f2"],
    )]);
}

#[test]
fn a_message_without_text_or_attachments_is_refused() {
    given::<Conversation>([started()]).when(post_files(None, "m1", &[])).then_err(ConversationError::EmptyMessage);
}

#[test]
fn a_message_carries_at_most_ten_attachments() {
    let ten: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    given::<Conversation>([started()]).when(post_files(None, "m1", &ten)).then(vec![customer_sent_files("", "m1", &ten)]);
    let mut eleven = ten.clone();
    eleven.push("f10");
    given::<Conversation>([started()]).when(post_files(None, "m1", &eleven)).then_err(ConversationError::TooManyAttachments(10));
}

#[test]
fn an_upload_is_attached_to_one_message_only() {
    let f1 = crate::AttachmentId::parse("f1").unwrap();
    given::<Conversation>([started(), customer_sent_files("", "m1", &["f1"])])
        .when(post_files(Some("again"), "m2", &["f1"]))
        .then_err(ConversationError::AttachmentAlreadyPosted(f1.clone()));
    given::<Conversation>([started()]).when(post_files(None, "m1", &["f1", "f1"])).then_err(ConversationError::AttachmentAlreadyPosted(f1));
}

#[test]
fn a_retried_message_with_attachments_is_stored_once() {
    given::<Conversation>([started(), customer_sent_files("", "m1", &["f1"])]).when(post_files(None, "m1", &["f1"])).then(vec![]);
}

fn notify(kind: NotificationKind, about_version: u64) -> ConversationCommand {
    ConversationCommand::RecordNotification { kind, recipient: agent_id(), about_version }
}

#[test]
fn a_notification_is_recorded_once_per_kind_and_event() {
    let history = [started(), customer_says("Where is my card?", "m1")];
    let recorded = ConversationEvent::NotificationSent { kind: NotificationKind::Unanswered, recipient: agent_id(), about_version: 2 };
    let state = given::<Conversation>(history.clone()).when(notify(NotificationKind::Unanswered, 2)).then(vec![recorded.clone()]);
    assert!(state.notified(NotificationKind::Unanswered, 2));
    assert!(!state.notified(NotificationKind::Reply, 2));
    let mut again = history.to_vec();
    again.push(recorded);
    given::<Conversation>(again.clone()).when(notify(NotificationKind::Unanswered, 2)).then_nothing();
    given::<Conversation>(again).when(notify(NotificationKind::Reply, 2)).then(vec![ConversationEvent::NotificationSent {
        kind: NotificationKind::Reply,
        recipient: agent_id(),
        about_version: 2,
    }]);
}

#[test]
fn a_notification_is_about_an_event_the_conversation_has() {
    given::<Conversation>([]).when(notify(NotificationKind::Reply, 1)).then_err(ConversationError::NotStarted);
    given::<Conversation>([started()]).when(notify(NotificationKind::Reply, 2)).then_err(ConversationError::UnknownMessage(2));
    given::<Conversation>([started()]).when(notify(NotificationKind::Reply, 0)).then_err(ConversationError::UnknownMessage(0));
}

#[test]
fn a_resolved_conversation_still_records_a_notification() {
    // The reply went out just before the agent resolved: the customer still gets it.
    let agent_said = ConversationEvent::MessagePosted {
        author: Author::Agent { id: agent_id() },
        text: Personal::plain("It ships today."),
        client_message_id: None,
        attachments: vec![],
    };
    given::<Conversation>([started(), agent_said, ConversationEvent::ConversationResolved { by: Some(agent_id()) }])
        .when(notify(NotificationKind::Reply, 2))
        .then(vec![ConversationEvent::NotificationSent { kind: NotificationKind::Reply, recipient: agent_id(), about_version: 2 }]);
}

#[test]
fn staff_of_the_tenant_write_notes_naming_colleagues_each_once() {
    given::<Conversation>([started()])
        .when(note(
            "VIP, refund quickly",
            vec![staff("bo", Role::Agent, "acme"), staff("cy", Role::Admin, "acme"), staff("bo", Role::Agent, "acme")],
        ))
        .then(vec![noted("VIP, refund quickly", &["bo", "cy"])]);
    given::<Conversation>([started()]).when(note("just for us", vec![])).then(vec![noted("just for us", &[])]);
}

#[test]
fn a_customer_or_another_tenants_staff_write_no_note() {
    let by = |author: Assignee| ConversationCommand::AddNote { author, text: text("hi"), mentions: vec![] };
    given::<Conversation>([started()]).when(by(assignee(Role::Customer, "acme"))).then_err(ConversationError::NotAnAgent);
    given::<Conversation>([started()]).when(by(assignee(Role::Agent, "globex"))).then_err(ConversationError::OtherTenant);
    given::<Conversation>([]).when(by(assignee(Role::Agent, "acme"))).then_err(ConversationError::NotStarted);
}

#[test]
fn a_note_mentions_only_staff_of_the_tenant_and_at_most_twenty() {
    given::<Conversation>([started()])
        .when(note("look", vec![staff("cust", Role::Customer, "acme")]))
        .then_err(ConversationError::NotAnAgent);
    given::<Conversation>([started()])
        .when(note("look", vec![staff("bo", Role::Agent, "globex")]))
        .then_err(ConversationError::OtherTenant);
    let many = |n: usize| (0..n).map(|i| staff(&format!("a{i}"), Role::Agent, "acme")).collect::<Vec<_>>();
    let twenty: Vec<String> = (0..MAX_MENTIONS).map(|i| format!("a{i}")).collect();
    let names: Vec<&str> = twenty.iter().map(String::as_str).collect();
    given::<Conversation>([started()]).when(note("all", many(MAX_MENTIONS))).then(vec![noted("all", &names)]);
    given::<Conversation>([started()])
        .when(note("too many", many(MAX_MENTIONS + 1)))
        .then_err(ConversationError::TooManyMentions { got: MAX_MENTIONS + 1, max: MAX_MENTIONS });
    // Twenty-one mentions of twenty people are twenty.
    let mut repeated = many(MAX_MENTIONS);
    repeated.push(staff("a0", Role::Agent, "acme"));
    given::<Conversation>([started()]).when(note("all", repeated)).then(vec![noted("all", &names)]);
}

#[test]
fn a_note_is_written_on_a_resolved_conversation_and_leaves_it_resolved() {
    let state = given::<Conversation>([started(), ConversationEvent::ConversationResolved { by: None }])
        .when(note("closed for good", vec![]))
        .then(vec![noted("closed for good", &[])]);
    assert_eq!(state.status(), Some(Status::Resolved));
}

#[test]
fn a_note_is_no_human_reply_the_bot_goes_on_answering() {
    let state = given::<Conversation>([started(), customer_says("where is my card?", "m1")])
        .when(note("bot has this one", vec![]))
        .then(vec![noted("bot has this one", &[])]);
    assert!(!state.human_involved(), "a note does not take the conversation from the bot");
    assert_eq!(state.status(), Some(Status::Open));
    given::<Conversation>([started(), customer_says("where is my card?", "m1"), noted("bot has this one", &[])])
        .when(answer(2))
        .then(vec![bot_answered(2)]);
    // Nor does it free a conversation a human has: still pending, the bot still silent.
    let waiting = [
        started(),
        customer_says("a human please", "m1"),
        ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None },
        noted("who takes it?", &[]),
    ];
    assert_eq!(
        given::<Conversation>(waiting.clone()).when(note("me", vec![])).then(vec![noted("me", &[])]).status(),
        Some(Status::Pending)
    );
    given::<Conversation>(waiting).when(answer(2)).then_err(ConversationError::HandedToHuman);
}

#[test]
fn a_notes_text_is_personal_data_sealed_like_a_message() {
    use crate::DomainEvent;
    let mut e = noted("the customer's address is 1 Main St", &["bo"]);
    assert_eq!(e.personal_fields_mut().len(), 1, "the text is sealed");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["type"], "NoteAdded");
    assert_eq!(json["mentions"], serde_json::json!(["bo"]));
    assert_eq!(serde_json::from_value::<ConversationEvent>(json).unwrap(), e);
    assert_eq!(e.event_type(), "NoteAdded");
    let data_subject = given::<Conversation>([started()]).when(note("x", vec![])).then(vec![noted("x", &[])]).data_subject(&e);
    assert_eq!(data_subject, Some(customer()), "sealed with the customer's key, like the agents' messages");
}

fn team(s: &str) -> Option<crate::TeamId> {
    Some(crate::TeamId::parse(s).unwrap())
}
fn handed_off() -> ConversationEvent {
    ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None }
}
fn assigned() -> ConversationEvent {
    ConversationEvent::AgentAssigned { agent: agent_id() }
}

#[test]
fn a_conversation_is_given_to_a_team_and_taken_from_it() {
    let state = given::<Conversation>([started()])
        .when(ConversationCommand::AssignTeam { team: team("billing") })
        .then(vec![ConversationEvent::TeamAssigned { team: team("billing") }]);
    assert_eq!(state.team(), team("billing").as_ref());
    let in_team = [started(), ConversationEvent::TeamAssigned { team: team("billing") }];
    given::<Conversation>(in_team.clone()).when(ConversationCommand::AssignTeam { team: team("billing") }).then_nothing();
    let state = given::<Conversation>(in_team)
        .when(ConversationCommand::AssignTeam { team: None })
        .then(vec![ConversationEvent::TeamAssigned { team: None }]);
    assert_eq!(state.team(), None);
    given::<Conversation>([]).when(ConversationCommand::AssignTeam { team: team("billing") }).then_err(ConversationError::NotStarted);
    given::<Conversation>([started(), ConversationEvent::ConversationResolved { by: None }])
        .when(ConversationCommand::AssignTeam { team: team("billing") })
        .then_err(ConversationError::AlreadyResolved);
}

#[test]
fn unassigning_a_handed_off_conversation_puts_it_back_to_waiting_and_the_bot_stays_silent() {
    let state = given::<Conversation>([started(), customer_says("help", "m1"), handed_off(), assigned()])
        .when(ConversationCommand::Unassign { by: Some(agent_id()) })
        .then(vec![ConversationEvent::AgentUnassigned { by: Some(agent_id()) }]);
    assert_eq!((state.status(), state.assignee(), state.human_involved()), (Some(Status::Pending), None, true));
    let unassigned = [started(), customer_says("help", "m1"), handed_off(), assigned(), ConversationEvent::AgentUnassigned { by: None }];
    given::<Conversation>(unassigned.clone()).when(answer(2)).then_err(ConversationError::HandedToHuman);
    given::<Conversation>(unassigned).when(ConversationCommand::Unassign { by: Some(agent_id()) }).then_nothing();
    given::<Conversation>([started(), assigned(), ConversationEvent::ConversationResolved { by: None }])
        .when(ConversationCommand::Unassign { by: None })
        .then_err(ConversationError::AlreadyResolved);
}

#[test]
fn the_router_assigns_only_a_conversation_still_waiting_for_a_human() {
    let state = given::<Conversation>([started(), handed_off()])
        .when(ConversationCommand::Route { agent: assignee(Role::Agent, "acme") })
        .then(vec![assigned()]);
    assert_eq!((state.status(), state.assignee()), (Some(Status::Open), Some(&agent_id())));
    // Someone took it meanwhile, or it was never handed off, or it is resolved: nothing happens.
    let other = Assignee { id: UserId::parse("other").unwrap(), tenant: tenant(), role: Role::Agent };
    given::<Conversation>([started(), handed_off(), assigned()]).when(ConversationCommand::Route { agent: other }).then_nothing();
    given::<Conversation>([started()]).when(ConversationCommand::Route { agent: assignee(Role::Agent, "acme") }).then_nothing();
    given::<Conversation>([started(), handed_off(), ConversationEvent::ConversationResolved { by: None }])
        .when(ConversationCommand::Route { agent: assignee(Role::Agent, "acme") })
        .then_nothing();
    given::<Conversation>([started(), handed_off()])
        .when(ConversationCommand::Route { agent: assignee(Role::Agent, "globex") })
        .then_err(ConversationError::OtherTenant);
}

#[test]
fn the_router_unassigns_an_absent_agent_only_while_they_are_the_assignee() {
    let state = given::<Conversation>([started(), handed_off(), assigned()])
        .when(ConversationCommand::UnassignAbsent { agent: agent_id() })
        .then(vec![ConversationEvent::AgentUnassigned { by: None }]);
    assert_eq!(state.status(), Some(Status::Pending));
    given::<Conversation>([started(), handed_off(), assigned()])
        .when(ConversationCommand::UnassignAbsent { agent: UserId::parse("other").unwrap() })
        .then_nothing();
    given::<Conversation>([started(), handed_off(), assigned(), ConversationEvent::ConversationResolved { by: None }])
        .when(ConversationCommand::UnassignAbsent { agent: agent_id() })
        .then_nothing();
}

#[test]
fn team_and_unassign_events_stored_as_json_load() {
    let team: ConversationEvent = serde_json::from_str(r#"{"type":"TeamAssigned","team":"billing"}"#).unwrap();
    assert_eq!(team, ConversationEvent::TeamAssigned { team: self::team("billing") });
    let un: ConversationEvent = serde_json::from_str(r#"{"type":"AgentUnassigned","by":null}"#).unwrap();
    assert_eq!(un, ConversationEvent::AgentUnassigned { by: None });
}
