use super::*;
use crate::testing::given;
use CannedReplyCommand as C;
use CannedReplyEvent as E;

fn id(s: &str) -> CannedReplyId {
    CannedReplyId::parse(s).unwrap()
}
fn added(i: &str, shortcut: &str, text: &str) -> E {
    E::CannedReplyAdded { id: id(i), shortcut: shortcut.into(), text: text.into() }
}
fn add(i: &str, shortcut: &str, text: &str) -> C {
    C::Add { id: id(i), shortcut: shortcut.into(), text: text.into() }
}
fn change(i: &str, shortcut: &str, text: &str) -> C {
    C::Change { id: id(i), shortcut: shortcut.into(), text: text.into() }
}

#[test]
fn a_reply_is_added_with_its_text_trimmed() {
    let state = given::<CannedReplies>([])
        .when(add("r1", "refund", "  Hi {{customer.name}}, your refund is on its way. — {{ agent.name }}\n"))
        .then(vec![added("r1", "refund", "Hi {{customer.name}}, your refund is on its way. — {{ agent.name }}")]);
    assert_eq!(state.replies().len(), 1);
    assert_eq!(state.get(&id("r1")).map(|r| r.shortcut.as_str()), Some("refund"));
}

#[test]
fn the_same_add_again_changes_nothing_and_a_different_one_with_that_id_is_refused() {
    given::<CannedReplies>([added("r1", "refund", "Hi")]).when(add("r1", "refund", " Hi ")).then_nothing();
    given::<CannedReplies>([added("r1", "refund", "Hi")])
        .when(add("r1", "other", "Hi"))
        .then_err(CannedReplyError::AlreadyExists(id("r1")));
}

#[test]
fn a_shortcut_is_used_once_per_tenant() {
    given::<CannedReplies>([added("r1", "refund", "Hi")])
        .when(add("r2", "refund", "Hello"))
        .then_err(CannedReplyError::ShortcutTaken("refund".into()));
    given::<CannedReplies>([added("r1", "refund", "Hi"), added("r2", "hello", "Hello")])
        .when(change("r2", "refund", "Hello"))
        .then_err(CannedReplyError::ShortcutTaken("refund".into()));
    // A removed reply's shortcut is free again; a reply keeps its own shortcut when changed.
    given::<CannedReplies>([added("r1", "refund", "Hi"), E::CannedReplyRemoved { id: id("r1") }])
        .when(add("r2", "refund", "Hello"))
        .then(vec![added("r2", "refund", "Hello")]);
    given::<CannedReplies>([added("r1", "refund", "Hi")]).when(change("r1", "refund", "Hi there")).then(vec![E::CannedReplyChanged {
        id: id("r1"),
        shortcut: "refund".into(),
        text: "Hi there".into(),
    }]);
}

#[test]
fn shortcuts_are_lower_case_letters_digits_dashes_and_underscores_up_to_32() {
    for ok in ["a", "refund-2_x", &"z".repeat(32)] {
        given::<CannedReplies>([]).when(add("r1", ok, "Hi")).then(vec![added("r1", ok, "Hi")]);
    }
    for bad in ["", "Refund", "re fund", "/refund", "rèfund", "a.b", &"z".repeat(33)] {
        given::<CannedReplies>([]).when(add("r1", bad, "Hi")).then_err(CannedReplyError::InvalidShortcut);
    }
}

#[test]
fn a_text_has_1_to_4000_characters() {
    given::<CannedReplies>([]).when(add("r1", "a", &"é".repeat(4_000))).then(vec![added("r1", "a", &"é".repeat(4_000))]);
    for bad in [String::new(), "   ".into(), "x".repeat(4_001), "bell\u{7}".into()] {
        let Err(e) = CannedReplies::default().decide(&add("r1", "a", &bad), crate::testing::now()) else { panic!("{bad:?} was accepted") };
        assert!(matches!(e, CannedReplyError::InvalidText(_)), "{e:?}");
    }
}

#[test]
fn an_unknown_placeholder_is_refused_by_name() {
    given::<CannedReplies>([])
        .when(add("r1", "a", "Hi {{customer.nmae}}"))
        .then_err(CannedReplyError::UnknownPlaceholder("customer.nmae".into()));
    given::<CannedReplies>([added("r1", "a", "Hi")])
        .when(change("r1", "a", "Hi {{ agent.name }} and {{order.id}}"))
        .then_err(CannedReplyError::UnknownPlaceholder("order.id".into()));
    let known = "{{customer.name}} {{agent.name}} {{conversation.id}}";
    given::<CannedReplies>([]).when(add("r1", "a", known)).then(vec![added("r1", "a", known)]);
}

#[test]
fn placeholders_are_read_as_the_dashboard_renders_them() {
    assert_eq!(placeholders("Hi {{customer.name}}, I am {{ agent.name }}."), vec!["customer.name", "agent.name"]);
    // Unclosed or brace-filled openings are text; the innermost pair is the placeholder.
    assert_eq!(placeholders("{{ not closed"), Vec::<&str>::new());
    assert_eq!(placeholders("{{{customer.name}}}"), vec!["customer.name"]);
    assert_eq!(placeholders("{{a{b}}"), Vec::<&str>::new());
    assert_eq!(placeholders("{{}}"), vec![""]);
    assert_eq!(check_text("{{}}"), Err(CannedReplyError::UnknownPlaceholder(String::new())));
}

#[test]
fn a_tenant_keeps_at_most_500_replies() {
    let full: Vec<E> = (0..MAX_REPLIES).map(|n| added(&format!("r{n}"), &format!("s{n}"), "Hi")).collect();
    given::<CannedReplies>(full.clone()).when(add("new", "new", "Hi")).then_err(CannedReplyError::TooMany);
    let mut one_removed = full;
    one_removed.push(E::CannedReplyRemoved { id: id("r7") });
    given::<CannedReplies>(one_removed).when(add("new", "new", "Hi")).then(vec![added("new", "new", "Hi")]);
}

#[test]
fn changing_or_removing_an_unknown_reply_is_refused() {
    given::<CannedReplies>([]).when(change("r1", "a", "Hi")).then_err(CannedReplyError::UnknownReply(id("r1")));
    given::<CannedReplies>([]).when(C::Remove { id: id("r1") }).then_err(CannedReplyError::UnknownReply(id("r1")));
    given::<CannedReplies>([added("r1", "a", "Hi"), E::CannedReplyRemoved { id: id("r1") }])
        .when(C::Remove { id: id("r1") })
        .then_err(CannedReplyError::UnknownReply(id("r1")));
}

#[test]
fn a_reply_is_removed_and_an_unchanged_change_is_a_no_op() {
    let state = given::<CannedReplies>([added("r1", "a", "Hi"), added("r2", "b", "Yo")])
        .when(C::Remove { id: id("r1") })
        .then(vec![E::CannedReplyRemoved { id: id("r1") }]);
    assert_eq!(state.replies().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["r2"]);
    assert_eq!(state.version(), 3);
    given::<CannedReplies>([added("r1", "a", "Hi")]).when(change("r1", "a", " Hi ")).then_nothing();
}

#[test]
fn the_events_are_not_personal_and_read_back_as_written() {
    let mut e = added("r1", "a", "Hi {{customer.name}}");
    assert!(e.personal_fields_mut().is_empty());
    assert_eq!(CannedReplies::default().data_subject(&e), None);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json, serde_json::json!({"type": "CannedReplyAdded", "id": "r1", "shortcut": "a", "text": "Hi {{customer.name}}"}));
    assert_eq!(crate::upcast::decode::<CannedReplyEvent>("CannedReplyAdded", 1, json).unwrap(), e);
    assert_eq!(e.schema_version(), 1);
}
