//! Stand-ins that describe, in the OpenAPI document, the domain types the API
//! speaks (`#[schema(value_type = schema::Role)]` in the route modules).
//!
//! The domain crate knows nothing of OpenAPI, so each type here is described
//! from the domain's serialised values: the schema cannot drift from the
//! domain's serde names, and a new variant or field fails to compile here.
//! Route modules and [`super::docs`] depend on this module; it depends on
//! neither.

use jamuna_domain::conversation as c;
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

/// A complete value: a new field fails to compile here, and a test of
/// [`super::docs`] checks the schema names exactly the fields this serialises.
pub(crate) fn settings_example() -> tenant::TenantSettings {
    tenant::TenantSettings { allowed_origins: vec!["https://shop.example.com".into()], self_signup: false }
}

impl PartialSchema for TenantSettings {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("The tenant's settings, as the dashboard edits them (both fields are required)"))
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
            .examples(serde_json::to_value(settings_example()).ok())
            .into()
    }
}
impl ToSchema for TenantSettings {
    fn name() -> Cow<'static, str> {
        "TenantSettings".into()
    }
}
