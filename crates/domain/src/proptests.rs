//! Property tests: whatever commands are accepted, replaying the events they
//! produced rebuilds exactly the same state, and the invariants hold on the
//! way.

use crate::conversation::*;
use crate::knowledge_base::*;
use crate::testing::now;
use crate::user::*;
use crate::{Aggregate, ArticleId, ClientMessageId, ConversationId, MessageText, TenantId, UserId};
use proptest::prelude::*;

fn conversation_command() -> impl Strategy<Value = ConversationCommand> {
    let tenant = TenantId::parse("acme").unwrap();
    let t2 = tenant.clone();
    prop_oneof![
        Just(ConversationCommand::Start {
            tenant: tenant.clone(),
            conversation_id: ConversationId::parse("c").unwrap(),
            customer: UserId::parse("cust").unwrap(),
            channel: Channel::Mobile,
        }),
        (0u8..6, "[a-z ]{1,20}", any::<bool>()).prop_map(|(id, text, agent)| ConversationCommand::PostMessage {
            author: if agent { Author::Agent { id: UserId::parse("ag").unwrap() } } else { Author::Customer },
            text: Some(MessageText::parse(&format!("m {text}")).unwrap()),
            client_message_id: Some(ClientMessageId::parse(format!("m{id}")).unwrap()),
            attachments: vec![],
        }),
        (1u64..12, 0.0f32..1.0).prop_map(|(v, c)| ConversationCommand::AnswerMessage {
            in_reply_to: v,
            text: MessageText::parse("an answer").unwrap(),
            intent: None,
            confidence: c,
            sources: vec![],
            why: None,
        }),
        Just(ConversationCommand::RequestHandoff { reason: HandoffReason::LowConfidence, why: None }),
        (any::<bool>(), any::<bool>()).prop_map(move |(admin, other)| ConversationCommand::AssignAgent {
            agent: Assignee {
                id: UserId::parse("ag").unwrap(),
                tenant: if other { TenantId::parse("globex").unwrap() } else { t2.clone() },
                role: if admin { Role::Admin } else { Role::Agent },
            }
        }),
        Just(ConversationCommand::Resolve { by: None }),
        Just(ConversationCommand::Reopen { by: None }),
        (0u8..7).prop_map(|s| ConversationCommand::GiveFeedback { feedback: Feedback::Csat { score: s, comment: None } }),
        ("[a-c]", any::<bool>()).prop_map(|(t, add)| {
            let tag = Tag::parse(&t).unwrap();
            if add {
                ConversationCommand::ChangeTags { add: vec![tag], remove: vec![] }
            } else {
                ConversationCommand::ChangeTags { add: vec![], remove: vec![tag] }
            }
        }),
    ]
}

fn run<A: Aggregate>(commands: &[A::Command]) -> (A, Vec<A::Event>) {
    let mut state = A::default();
    let mut log = Vec::new();
    for c in commands {
        if let Ok(events) = state.decide(c, now()) {
            for e in events {
                state.apply(&e);
                log.push(e);
            }
        }
    }
    (state, log)
}

fn replay<A: Aggregate>(events: &[A::Event]) -> A {
    let mut state = A::default();
    for e in events {
        state.apply(e);
    }
    state
}

proptest! {
    #[test]
    fn conversations_rebuild_from_their_events(commands in prop::collection::vec(conversation_command(), 0..40)) {
        let (state, events) = run::<Conversation>(&commands);
        prop_assert_eq!(replay::<Conversation>(&events), state.clone());
        prop_assert_eq!(state.version(), events.len() as u64);

        // The invariants, checked on the accepted history.
        let mut human = false;
        let mut resolved = false;
        let mut ids = std::collections::HashSet::new();
        for e in &events {
            match e {
                ConversationEvent::BotAnswered { .. } => prop_assert!(!human, "the bot answered after a human took over"),
                ConversationEvent::MessagePosted { author, client_message_id, .. } => {
                    prop_assert!(!resolved, "a message on a resolved conversation");
                    if let Some(id) = client_message_id {
                        prop_assert!(ids.insert(id.clone()), "a client message id stored twice");
                    }
                    if matches!(author, Author::Agent { .. }) { human = true; }
                }
                ConversationEvent::HandoffRequested { .. } | ConversationEvent::AgentAssigned { .. } => human = true,
                ConversationEvent::ConversationResolved { .. } => resolved = true,
                ConversationEvent::ConversationReopened { .. } => resolved = false,
                _ => {}
            }
        }
    }

    #[test]
    fn users_rebuild_from_their_events(roles in prop::collection::vec(0u8..4, 0..12)) {
        let commands: Vec<UserCommand> = roles.iter().map(|r| match r {
            0 => UserCommand::Register {
                tenant: TenantId::parse("acme").unwrap(),
                user_id: UserId::parse("u").unwrap(),
                role: Role::Customer, name: None, email: None, password_hash: None,
            },
            1 => UserCommand::ChangeRole { role: Role::Agent },
            2 => UserCommand::ChangeRole { role: Role::Admin },
            _ => UserCommand::Erase,
        }).collect();
        let (state, events) = run::<User>(&commands);
        prop_assert_eq!(replay::<User>(&events), state);
    }

    #[test]
    fn knowledge_bases_rebuild_from_their_events(ops in prop::collection::vec((0u8..3, 0u8..4, "[a-z]{1,8}"), 0..30)) {
        let commands: Vec<KnowledgeBaseCommand> = ops.iter().map(|(op, id, body)| {
            let article_id = ArticleId::parse(format!("a{id}")).unwrap();
            match op {
                0 => KnowledgeBaseCommand::AddArticle {
                    tenant: TenantId::parse("acme").unwrap(), article_id,
                    title: "T".into(), body: body.clone(), source: None,
                },
                1 => KnowledgeBaseCommand::UpdateArticle { article_id, title: "T".into(), body: body.clone() },
                _ => KnowledgeBaseCommand::RemoveArticle { article_id },
            }
        }).collect();
        let (state, events) = run::<KnowledgeBase>(&commands);
        prop_assert_eq!(replay::<KnowledgeBase>(&events), state);
    }
}
