//! Stand-ins that describe, in the OpenAPI document, the domain types the API
//! speaks (`#[schema(value_type = schema::Role)]` in the route modules).
//!
//! The domain crate knows nothing of OpenAPI, so each type here is described
//! from the domain's serialised values: the schema cannot drift from the
//! domain's serde names, and a new variant or field fails to compile here.
//! Route modules and [`super::docs`] depend on this module; it depends on
//! neither.

use jamuna_domain::conversation as c;
use jamuna_domain::knowledge_base as kb;
use jamuna_domain::{tenant, user};
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// `jamuna_domain::user::Role`.
pub struct Role;
/// `jamuna_domain::conversation::Channel`.
pub struct Channel;
/// `jamuna_domain::conversation::Status`.
pub struct Status;
/// `jamuna_domain::tenant::TenantSettings`.
pub struct TenantSettings;
/// `jamuna_domain::knowledge_base::ModelState`.
pub struct ModelState;
/// `jamuna_domain::conversation::HandoffReason`.
pub struct HandoffReason;
/// `jamuna_domain::conversation::Basis` (a `why`'s `basis`).
pub struct DecisionBasis;

/// Every variant, listed by an exhaustive `match` so a new one fails to compile here.
fn roles() -> Vec<user::Role> {
    let all = vec![user::Role::Customer, user::Role::Agent, user::Role::Admin];
    for r in &all {
        match r {
            user::Role::Customer | user::Role::Agent | user::Role::Admin => {}
        }
    }
    all
}
fn channels() -> Vec<c::Channel> {
    let all = vec![c::Channel::Web, c::Channel::Mobile, c::Channel::Api];
    for ch in &all {
        match ch {
            c::Channel::Web | c::Channel::Mobile | c::Channel::Api => {}
        }
    }
    all
}
fn statuses() -> Vec<c::Status> {
    let all = vec![c::Status::Open, c::Status::Pending, c::Status::Resolved];
    for s in &all {
        match s {
            c::Status::Open | c::Status::Pending | c::Status::Resolved => {}
        }
    }
    all
}

fn model_states() -> Vec<kb::ModelState> {
    use kb::ModelState as M;
    let all = vec![M::Untrained, M::Training, M::Trained, M::Stale, M::Failed];
    for s in &all {
        match s {
            M::Untrained | M::Training | M::Trained | M::Stale | M::Failed => {}
        }
    }
    all
}

fn handoff_reasons() -> Vec<c::HandoffReason> {
    use c::HandoffReason as H;
    let all = vec![H::LowConfidence, H::CustomerAsked, H::RepeatedFailure, H::NegativeFeedback, H::AgentTookOver, H::OutOfScope];
    for r in &all {
        match r {
            H::LowConfidence | H::CustomerAsked | H::RepeatedFailure | H::NegativeFeedback | H::AgentTookOver | H::OutOfScope => {}
        }
    }
    all
}

fn bases() -> Vec<c::Basis> {
    use c::Basis as B;
    let all = vec![
        B::CustomerAsked,
        B::SmallTalk,
        B::Retrieval,
        B::IntentHead,
        B::OutOfScopeDistance,
        B::LowConfidence,
        B::Clarify,
        B::Context,
        B::OutOfScopeExample,
    ];
    for b in &all {
        match b {
            B::CustomerAsked
            | B::SmallTalk
            | B::Retrieval
            | B::IntentHead
            | B::OutOfScopeDistance
            | B::LowConfidence
            | B::Clarify
            | B::Context
            | B::OutOfScopeExample => {}
        }
    }
    all
}

fn string_enum<T: serde::Serialize>(values: Vec<T>, description: &str) -> RefOr<Schema> {
    let values: Vec<serde_json::Value> = values.iter().filter_map(|v| serde_json::to_value(v).ok()).collect();
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values)).description(Some(description)).into()
}

impl PartialSchema for Role {
    fn schema() -> RefOr<Schema> {
        string_enum(roles(), "A user's role: customers write in; agents and admins are staff; admins manage the tenant")
    }
}
impl ToSchema for Role {
    fn name() -> Cow<'static, str> {
        "Role".into()
    }
}
impl PartialSchema for Channel {
    fn schema() -> RefOr<Schema> {
        string_enum(channels(), "Where the customer writes from")
    }
}
impl ToSchema for Channel {
    fn name() -> Cow<'static, str> {
        "Channel".into()
    }
}
impl PartialSchema for Status {
    fn schema() -> RefOr<Schema> {
        string_enum(statuses(), "Where a conversation stands: open (bot or agent), pending (waiting for a human), resolved")
    }
}
impl ToSchema for Status {
    fn name() -> Cow<'static, str> {
        "Status".into()
    }
}

impl PartialSchema for ModelState {
    fn schema() -> RefOr<Schema> {
        string_enum(
            model_states(),
            "Where the intent model stands: `untrained` (never trained, none asked for), `training` (asked for, not yet \
             recorded), `trained` (on the current examples), `stale` (the examples changed since, and no training is asked \
             for) or `failed` (the training of the current examples failed: see `failure`)",
        )
    }
}
impl ToSchema for ModelState {
    fn name() -> Cow<'static, str> {
        "ModelState".into()
    }
}

impl PartialSchema for HandoffReason {
    fn schema() -> RefOr<Schema> {
        string_enum(
            handoff_reasons(),
            "Why a conversation went to a human (staff only): the bot was unsure (`low_confidence`), the customer asked, its \
             clarifying question failed (`repeated_failure`), a 👎 (`negative_feedback`), staff took it over \
             (`agent_took_over`), or the question reads as one of the tenant's examples of what the bot must hand to a \
             person (`out_of_scope`)",
        )
    }
}
impl ToSchema for HandoffReason {
    fn name() -> Cow<'static, str> {
        "HandoffReason".into()
    }
}

impl PartialSchema for DecisionBasis {
    fn schema() -> RefOr<Schema> {
        string_enum(
            bases(),
            "Which score decided a bot answer or handoff (a `why`'s `basis`, staff only); `out_of_scope_example`: the intent \
             model read the message as the reserved `out_of_scope` intent, the tenant's examples of questions for a person",
        )
    }
}
impl ToSchema for DecisionBasis {
    fn name() -> Cow<'static, str> {
        "DecisionBasis".into()
    }
}

/// A complete value: a new field fails to compile here, and a test of
/// [`super::docs`] checks the schema names exactly the fields this serialises.
pub(crate) fn settings_example() -> tenant::TenantSettings {
    tenant::TenantSettings {
        allowed_origins: vec!["https://shop.example.com".into()],
        self_signup: false,
        handoff_retention: 0.95,
        prechat: tenant::PrechatMode::Off,
    }
}

impl PartialSchema for TenantSettings {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "The tenant's settings, as the dashboard edits them (`allowed_origins` and `self_signup` are required; \
                 `handoff_retention` is 0.95 when left out)",
            ))
            .property(
                "allowed_origins",
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("Origins whose pages may open the widget's WebSocket; empty: none but the server's own")),
            )
            .required("allowed_origins")
            .property(
                "self_signup",
                ObjectBuilder::new().schema_type(Type::Boolean).description(Some("May customers register accounts themselves?")),
            )
            .required("self_signup")
            .property(
                "handoff_retention",
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(tenant::MIN_HANDOFF_RETENTION))
                    .maximum(Some(tenant::MAX_HANDOFF_RETENTION))
                    .description(Some(
                        "How readily the bot hands off: the share of the questions its intent model could answer that it answers \
                         (held-out in-scope retention); higher keeps more answers and catches fewer unknown questions. Outside \
                         the range: 409 `invalid_handoff_retention`",
                    )),
            )
            .property(
                "prechat",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["off", "optional", "required"])).description(Some(
                    "The widget's pre-chat form (name, e-mail): `off` (the default when left out), `optional`, or `required` \
                         (a customer the website did not identify cannot post before giving both: 409 `prechat_required`)",
                )),
            )
            .examples(serde_json::to_value(settings_example()).ok())
            .into()
    }
}
impl ToSchema for TenantSettings {
    fn name() -> Cow<'static, str> {
        "TenantSettings".into()
    }
}

/// The constraints of the strings requests carry, as the domain's parse
/// functions enforce them: each pattern is ECMA-262 and Python `re` alike
/// (schemathesis generates from it) and at most as permissive as the parse
/// function, so a schema-valid value is always accepted (a test below
/// generates values from each and parses them).
pub mod patterns {
    /// `TenantId`, `UserId`, `ArticleId`, `ClientMessageId` (`jamuna_domain::ids`).
    pub const ID: &str = r"^[A-Za-z0-9_-]{1,64}$";
    /// `MessageText`: something besides white space, and no control characters but tab and line breaks.
    pub const MESSAGE: &str = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$";
    /// `Tag`: something besides white space, no control characters, and no `İ`
    /// (whose lower case is two characters: the limit counts the lower case).
    pub const TAG: &str = r"^[^\x00-\x1f\x7f-\x9f\u0130]*[^\x00-\x20\x7f-\xa0\u0130\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x1f\x7f-\x9f\u0130]*$";
    /// `Email`, narrowed to ASCII (the parse function takes more).
    pub const EMAIL: &str = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$";
    /// A team name (`jamuna_domain::team`): something besides white space, no control characters.
    pub const TEAM_NAME: &str =
        r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff][^\x00-\x1f\x7f-\x9f]*$";
    /// A search: at most 16 words (`conversations::MAX_SEARCH_WORDS`).
    pub const SEARCH: &str = r"^\s*(\S+\s+){0,15}\S*\s*$";
}

/// A constrained string's schema.
fn string(min: Option<usize>, max: usize, pattern: Option<&str>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(min)
        .max_length(Some(max))
        .pattern(pattern)
        .description(Some(description))
        .into()
}

macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $pattern:expr, $description:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string($min, $max, $pattern, $description)
            }
        }
        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                stringify!($name).into()
            }
        }
    };
}

string_schema!(
    /// `jamuna_domain::ids`: tenant, user, article and client message ids.
    Id, Some(1), jamuna_domain::ids::MAX_ID_LEN, Some(patterns::ID),
    "An id: 1 to 64 ASCII letters, digits, `-` or `_`"
);
string_schema!(
    /// `jamuna_domain::MessageText`.
    MessageText, Some(1), jamuna_domain::text::MAX_MESSAGE_CHARS, Some(patterns::MESSAGE),
    "A message: trimmed, at most 4,000 characters, not blank, no control characters but tab and line breaks"
);
string_schema!(
    /// `jamuna_domain::conversation::Tag`.
    Tag, Some(1), 32, Some(patterns::TAG),
    "A tag: trimmed and lower-cased, 1 to 32 characters, no control characters"
);
string_schema!(
    /// `jamuna_domain::team` names.
    TeamName, Some(1), jamuna_domain::team::MAX_TEAM_NAME, Some(patterns::TEAM_NAME),
    "A team name: trimmed, 1 to 60 characters, no control characters; unique in the tenant (case-insensitive)"
);
string_schema!(
    /// `jamuna_domain::user::Email` (narrowed to ASCII here).
    Email, Some(5), 254, Some(patterns::EMAIL),
    "An e-mail address (compared in lower case)"
);
string_schema!(
    /// `crate::auth::password::check_strength`.
    Password, Some(crate::auth::password::MIN_PASSWORD_CHARS), crate::auth::password::MAX_PASSWORD_CHARS, None,
    "A password: 10 to 256 characters"
);
string_schema!(
    /// `conversations::search_text`.
    Search, None, crate::routes::conversations::MAX_SEARCH_CHARS, Some(patterns::SEARCH),
    "Full-text search over message text: every word must occur; at most 256 characters and 16 words"
);

/// A `oneOf` of objects (an internally tagged enum's schema) with each
/// variant closed (`additionalProperties: false`), as the enum's
/// `#[serde(deny_unknown_fields)]` makes serde refuse unknown fields (the
/// derive closes structs, not an enum's variants).
pub fn closed(mut schema: RefOr<Schema>) -> RefOr<Schema> {
    if let RefOr::T(Schema::OneOf(one_of)) = &mut schema {
        for variant in &mut one_of.items {
            if let RefOr::T(Schema::Object(o)) = variant {
                o.additional_properties = Some(Box::new(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
            }
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::patterns;
    use jamuna_domain::conversation::Tag;
    use jamuna_domain::user::Email;
    use jamuna_domain::{ArticleId, ClientMessageId, MessageText, TenantId, UserId};
    use proptest::prelude::*;

    /// Strings the pattern matches, of at most `max` characters.
    fn matching(pattern: &str, max: usize) -> impl Strategy<Value = String> {
        let inner = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).expect("an anchored pattern");
        proptest::string::string_regex(inner).expect("a pattern proptest reads").prop_filter("too long", move |s| s.chars().count() <= max)
    }

    proptest! {
        #[test]
        fn a_schema_valid_id_parses(s in matching(patterns::ID, 64)) {
            prop_assert!(TenantId::parse(s.clone()).is_ok() && UserId::parse(s.clone()).is_ok());
            prop_assert!(ArticleId::parse(s.clone()).is_ok() && ClientMessageId::parse(s).is_ok());
        }

        #[test]
        fn a_schema_valid_message_parses(s in matching(patterns::MESSAGE, jamuna_domain::text::MAX_MESSAGE_CHARS)) {
            prop_assert!(MessageText::parse(&s).is_ok(), "{s:?}");
        }

        #[test]
        fn a_schema_valid_tag_parses(s in matching(patterns::TAG, 32)) {
            prop_assert!(Tag::parse(&s).is_ok(), "{s:?}");
        }

        #[test]
        fn a_schema_valid_email_parses(s in matching(patterns::EMAIL, 254)) {
            prop_assert!(Email::parse(&s).is_ok(), "{s:?}");
        }

        #[test]
        fn a_schema_valid_search_is_accepted(s in matching(patterns::SEARCH, crate::routes::conversations::MAX_SEARCH_CHARS)) {
            prop_assert!(crate::routes::conversations::search_text(Some(s.clone())).is_ok(), "{s:?}");
        }
    }
}
