use super::fake::{BagOfWords, bag};
use super::sqlite::SqliteGaps;
use super::*;
use crate::testing::{Script, conv, feed, tenant, user};

fn example(position: u64, question: &str, customer: &str) -> Gap {
    Gap {
        example: Example {
            conversation_id: conv(&format!("c{position}")),
            customer: user(customer),
            question: question.into(),
            bot_answer: None,
            agent_reply: None,
            agent: None,
            awaiting_reply: true,
            reason: GapReason::LowConfidence,
            at: Script::new().now,
            position,
        },
    }
}

fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; 8];
    v[i] = 1.0;
    v
}

#[test]
fn a_question_joins_the_closest_group_above_the_threshold_else_starts_one() {
    let mut t = TenantGaps::new(tenant("acme"));
    t.add(example(1, "a", "u1"), &axis(0));
    t.add(example(2, "b", "u1"), &axis(1));
    // Closer to axis 0 (cosine 0.89) than to axis 1 (0.45): joins g1.
    t.add(example(3, "c", "u1"), &[2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    // Cosine 0.45 with g2, less with g1: below the threshold, a group of its own.
    t.add(example(4, "d", "u1"), &[0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let ids: Vec<(&str, u64)> = t.groups.iter().map(|g| (g.id.as_str(), g.count)).collect();
    assert_eq!(ids, vec![("g1", 2), ("g2", 1), ("g4", 1)]);
    assert_eq!(t.groups[0].question, "a");
    assert_eq!(t.groups[0].last_position, 3);
}

#[test]
fn counts_stay_exact_while_a_group_keeps_its_newest_examples() {
    let mut t = TenantGaps::new(tenant("acme"));
    for i in 1..=12 {
        t.add(example(i, &format!("q{i}"), "u1"), &axis(0));
    }
    let g = &t.groups[0];
    assert_eq!((g.count, g.reasons.low_confidence), (12, 12));
    let kept: Vec<u64> = g.examples.iter().map(|e| e.position).collect();
    assert_eq!(kept, vec![8, 9, 10, 11, 12]);
    assert_eq!(g.question, "q1", "the first question stays the group's");
}

#[test]
fn past_the_cap_a_new_group_evicts_the_smallest_then_oldest() {
    let mut t = TenantGaps::new(tenant("acme"));
    let v = |i: usize| {
        let mut v = vec![0.0; MAX_GROUPS + 2];
        v[i] = 1.0;
        v
    };
    for i in 0..MAX_GROUPS {
        t.add(example(i as u64 + 1, "q", "u1"), &v(i));
    }
    // Group 0 gets a second question: no longer among the smallest.
    t.add(example(1000, "q", "u1"), &v(0));
    t.add(example(1001, "new", "u1"), &v(MAX_GROUPS));
    assert_eq!(t.groups.len(), MAX_GROUPS);
    assert!(t.groups.iter().any(|g| g.id == "g1"), "the bigger group stays");
    assert!(!t.groups.iter().any(|g| g.id == "g2"), "the oldest of the smallest goes");
    assert!(t.groups.iter().any(|g| g.id == "g1001"));
}

#[test]
fn an_erase_replaces_the_words_of_the_customer_and_of_the_agent() {
    let mut t = TenantGaps::new(tenant("acme"));
    t.add(example(1, "first secret", "u1"), &axis(0));
    t.add(example(2, "second question", "u2"), &axis(0));
    assert!(t.agent_replied(&conv("c2"), &user("agent"), "agent words"));
    assert!(t.erase(&user("u1")));
    assert!(t.erase(&user("agent")));
    let json = serde_json::to_string(&t).unwrap();
    assert!(!json.contains("first secret") && !json.contains("agent words"), "{json}");
    assert_eq!(t.groups[0].question, "second question");
    assert_eq!(t.groups[0].count, 2);
    assert!(!t.erase(&user("u1")), "a second erase changes nothing");
}

#[test]
fn the_fake_encoder_puts_rewordings_together() {
    let mut t = TenantGaps::new(tenant("acme"));
    t.add(example(1, "", "u1"), &bag("my new card has not arrived yet"));
    t.add(example(2, "", "u1"), &bag("my new card has still not arrived"));
    t.add(example(3, "", "u1"), &bag("how do I reset my password"));
    assert_eq!(t.groups.iter().map(|g| g.count).collect::<Vec<_>>(), vec![2, 1]);
}

fn on_disk(dir: &std::path::Path, word: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        if bytes.windows(word.len()).any(|w| w == word.as_bytes()) {
            found.push(entry.path().display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn no_word_of_an_erased_customer_is_left_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn GapStore> = Arc::new(SqliteGaps::open(dir.path().join("gaps.db")).unwrap());
    let model = GapModel::new(store.clone(), Arc::new(BagOfWords));
    let mut s = Script::new();
    s.start("acme", "c1", "u1", jamuna_domain::conversation::Channel::Web);
    s.say("acme", "c1", Author::Customer, "zorblatt fizzwhistle quillbrace");
    s.conversation("acme", "c1", ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None });
    s.say("acme", "c1", Author::Agent { id: user("agent") }, "glimmerfrond reply");
    feed(&model, PROJECTION, &s.events, 2).await;
    for word in ["zorblatt", "glimmerfrond"] {
        assert!(!on_disk(dir.path(), word).is_empty(), "{word} is on disk before the erase");
    }
    let before = s.events.len();
    s.user("acme", "u1", UserEvent::UserErased);
    feed(&model, PROJECTION, &s.events[before..], 1).await;
    for word in ["zorblatt", "fizzwhistle", "quillbrace", "glimmerfrond"] {
        assert_eq!(on_disk(dir.path(), word), Vec::<String>::new(), "{word} after the erase");
    }
    assert_eq!(store.groups(&tenant("acme"), 10).await.unwrap()[0].count, 1);
}

#[tokio::test]
async fn a_question_handed_off_as_out_of_scope_is_not_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn GapStore> = Arc::new(SqliteGaps::open(dir.path().join("gaps.db")).unwrap());
    let model = GapModel::new(store.clone(), Arc::new(BagOfWords));
    let mut s = Script::new();
    s.start("acme", "c1", "u1", jamuna_domain::conversation::Channel::Web);
    s.say("acme", "c1", Author::Customer, "can I get a mortgage");
    s.conversation("acme", "c1", ConversationEvent::HandoffRequested { reason: HandoffReason::OutOfScope, why: None });
    s.say("acme", "c1", Author::Agent { id: user("agent") }, "Our mortgage team will call you.");
    s.start("acme", "c2", "u2", jamuna_domain::conversation::Channel::Web);
    s.say("acme", "c2", Author::Customer, "where is my card");
    s.conversation("acme", "c2", ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None });
    feed(&model, PROJECTION, &s.events, 3).await;
    let groups = store.groups(&tenant("acme"), 10).await.unwrap();
    let questions: Vec<&str> = groups.iter().map(|g| g.question.as_str()).collect();
    assert_eq!(questions, ["where is my card"]);
}

#[tokio::test]
async fn a_replay_from_zero_rebuilds_the_same_groups() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn GapStore> = Arc::new(SqliteGaps::open(dir.path().join("gaps.db")).unwrap());
    let model = GapModel::new(store.clone(), Arc::new(BagOfWords));
    let events = super::contract::script().events;
    feed(&model, PROJECTION, &events, 2).await;
    let live = store.groups(&tenant("acme"), 50).await.unwrap();
    model.begin_rebuild(PROJECTION).await.unwrap();
    assert!(store.groups(&tenant("acme"), 50).await.unwrap().is_empty());
    feed(&model, PROJECTION, &events, 1000).await;
    model.end_rebuild(PROJECTION).await.unwrap();
    assert_eq!(store.groups(&tenant("acme"), 50).await.unwrap(), live);
    assert_eq!(live.len(), 2);
}
