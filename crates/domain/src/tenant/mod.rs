//! A tenant: one support team, its settings and the public key of its chat
//! widget. Everything else in Jamuna belongs to exactly one tenant.

use crate::{Aggregate, AggregateKind, DomainEvent, Personal, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// The tenant's settings, as the dashboard edits them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Origins (`https://shop.example.com`) whose pages may open the widget's
    /// WebSocket. Empty: none but the server's own.
    pub allowed_origins: Vec<String>,
    /// May customers register accounts themselves?
    pub self_signup: bool,
    /// How readily the bot hands off: the share of the questions its intent model
    /// could answer that it does answer (its *in-scope retention* on held-out
    /// examples), between [`MIN_HANDOFF_RETENTION`] and [`MAX_HANDOFF_RETENTION`].
    /// Higher keeps more answers and catches fewer unknown questions. Events stored
    /// before the setting existed read as [`DEFAULT_HANDOFF_RETENTION`].
    #[serde(default = "default_handoff_retention")]
    pub handoff_retention: f64,
    /// Does the widget ask a visitor's name and e-mail before their first
    /// message? Events stored before the setting existed read as `off`.
    #[serde(default)]
    pub prechat: PrechatMode,
}

/// The widget's pre-chat form (name, e-mail), per tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrechatMode {
    /// No form.
    #[default]
    Off,
    /// The form is shown and may be skipped.
    Optional,
    /// A visitor not identified by the host page gives a name and an e-mail
    /// address before they can post.
    Required,
}

/// The longest grace period during which a rotated identity secret keeps
/// verifying signatures: a week.
pub const MAX_IDENTITY_SECRET_GRACE_SECS: u64 = 7 * 24 * 3600;

/// The retention a tenant has until it chooses another.
pub const DEFAULT_HANDOFF_RETENTION: f64 = 0.95;
/// The lowest retention a tenant may choose: below it the bot would hand off more
/// than one answerable question in five.
pub const MIN_HANDOFF_RETENTION: f64 = 0.80;
/// The highest: above it the held-out estimate rests on a handful of messages.
pub const MAX_HANDOFF_RETENTION: f64 = 0.995;

fn default_handoff_retention() -> f64 {
    DEFAULT_HANDOFF_RETENTION
}

impl TenantSettings {
    /// Settings with the defaults of everything but the origins and self-signup.
    pub fn new(allowed_origins: Vec<String>, self_signup: bool) -> Self {
        Self { allowed_origins, self_signup, handoff_retention: DEFAULT_HANDOFF_RETENTION, prechat: PrechatMode::Off }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    Create {
        tenant: TenantId,
        name: String,
        widget_key: String,
        settings: TenantSettings,
    },
    ChangeSettings {
        settings: TenantSettings,
    },
    RotateWidgetKey {
        widget_key: String,
    },
    /// Makes `key_id` the tenant's identity secret (its key-store entry; the
    /// secret itself never enters the log). The one it replaces keeps
    /// verifying for `grace_secs` more (at most
    /// [`MAX_IDENTITY_SECRET_GRACE_SECS`]).
    RotateIdentitySecret {
        key_id: String,
        grace_secs: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TenantEvent {
    TenantCreated {
        tenant: TenantId,
        name: String,
        widget_key: String,
        settings: TenantSettings,
    },
    TenantSettingsChanged {
        settings: TenantSettings,
    },
    WidgetKeyRotated {
        widget_key: String,
    },
    /// The tenant's identity secret is now the one in key-store entry
    /// `key_id`; the previous one (if any) verifies until `previous_valid_until`.
    IdentitySecretRotated {
        key_id: String,
        previous: Option<String>,
        previous_valid_until: Option<Timestamp>,
    },
}

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::TenantCreated { .. } => "TenantCreated",
            Self::TenantSettingsChanged { .. } => "TenantSettingsChanged",
            Self::WidgetKeyRotated { .. } => "WidgetKeyRotated",
            Self::IdentitySecretRotated { .. } => "IdentitySecretRotated",
        }
    }

    /// A tenant's name and settings are the company's, not a person's.
    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        vec![]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("the tenant already exists")]
    AlreadyExists,
    #[error("the tenant does not exist")]
    NotFound,
    #[error("a tenant name has 1 to 100 characters")]
    InvalidName,
    #[error("a widget key has 24 to 128 URL-safe characters")]
    InvalidWidgetKey,
    #[error("{0:?} is not an origin (scheme://host[:port])")]
    InvalidOrigin(String),
    #[error("the handoff retention is between {MIN_HANDOFF_RETENTION} and {MAX_HANDOFF_RETENTION}")]
    InvalidHandoffRetention,
    #[error("an identity secret's grace period is at most {MAX_IDENTITY_SECRET_GRACE_SECS} seconds")]
    InvalidGrace,
    #[error("an identity secret's key id has 1 to 64 URL-safe characters")]
    InvalidKeyId,
}

impl crate::ErrorCode for TenantError {
    fn code(&self) -> &'static str {
        match self {
            TenantError::AlreadyExists => "already_exists",
            TenantError::NotFound => "not_found",
            TenantError::InvalidName => "invalid_name",
            TenantError::InvalidWidgetKey => "invalid_widget_key",
            TenantError::InvalidOrigin(_) => "invalid_origin",
            TenantError::InvalidHandoffRetention => "invalid_handoff_retention",
            TenantError::InvalidGrace => "invalid_grace",
            TenantError::InvalidKeyId => "invalid_key_id",
        }
    }
}

fn check_settings(s: &TenantSettings) -> Result<(), TenantError> {
    for o in &s.allowed_origins {
        let ok = (o.starts_with("https://") || o.starts_with("http://"))
            && !o.ends_with('/')
            && o.split_once("://").is_some_and(|(_, host)| !host.is_empty() && !host.contains('/') && !host.contains(char::is_whitespace));
        if !ok {
            return Err(TenantError::InvalidOrigin(o.clone()));
        }
    }
    if !(MIN_HANDOFF_RETENTION..=MAX_HANDOFF_RETENTION).contains(&s.handoff_retention) {
        return Err(TenantError::InvalidHandoffRetention);
    }
    Ok(())
}

fn check_key(k: &str) -> Result<(), TenantError> {
    if (24..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(())
    } else {
        Err(TenantError::InvalidWidgetKey)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tenant {
    version: u64,
    settings: Option<TenantSettings>,
    widget_key: Option<String>,
    identity_secret: Option<String>,
    previous_identity_secret: Option<(String, Timestamp)>,
}

impl Tenant {
    /// The key-store entries of the identity secrets that verify a signature
    /// at `now`: the current one, then the previous one within its grace.
    pub fn identity_secrets(&self, now: Timestamp) -> Vec<&str> {
        let previous = self.previous_identity_secret.as_ref().filter(|(_, until)| now < *until).map(|(k, _)| k.as_str());
        self.identity_secret.as_deref().into_iter().chain(previous).collect()
    }
    pub fn settings(&self) -> Option<&TenantSettings> {
        self.settings.as_ref()
    }
    pub fn widget_key(&self) -> Option<&str> {
        self.widget_key.as_deref()
    }
}

impl Aggregate for Tenant {
    const KIND: AggregateKind = AggregateKind::Tenant;
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;

    fn decide(&self, command: &TenantCommand, now: Timestamp) -> Result<Vec<TenantEvent>, TenantError> {
        match command {
            TenantCommand::Create { tenant, name, widget_key, settings } => {
                if self.settings.is_some() {
                    return Err(TenantError::AlreadyExists);
                }
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(TenantError::InvalidName);
                }
                check_key(widget_key)?;
                check_settings(settings)?;
                Ok(vec![TenantEvent::TenantCreated {
                    tenant: tenant.clone(),
                    name: name.into(),
                    widget_key: widget_key.clone(),
                    settings: settings.clone(),
                }])
            }
            TenantCommand::ChangeSettings { settings } => {
                let current = self.settings.as_ref().ok_or(TenantError::NotFound)?;
                check_settings(settings)?;
                if current == settings {
                    return Ok(vec![]);
                }
                Ok(vec![TenantEvent::TenantSettingsChanged { settings: settings.clone() }])
            }
            TenantCommand::RotateWidgetKey { widget_key } => {
                if self.settings.is_none() {
                    return Err(TenantError::NotFound);
                }
                check_key(widget_key)?;
                Ok(vec![TenantEvent::WidgetKeyRotated { widget_key: widget_key.clone() }])
            }
            TenantCommand::RotateIdentitySecret { key_id, grace_secs } => {
                if self.settings.is_none() {
                    return Err(TenantError::NotFound);
                }
                if key_id.is_empty() || key_id.len() > 64 || !key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    return Err(TenantError::InvalidKeyId);
                }
                if *grace_secs > MAX_IDENTITY_SECRET_GRACE_SECS {
                    return Err(TenantError::InvalidGrace);
                }
                let previous = self.identity_secret.clone();
                let until = previous.as_ref().map(|_| now + chrono::Duration::seconds(*grace_secs as i64));
                Ok(vec![TenantEvent::IdentitySecretRotated { key_id: key_id.clone(), previous, previous_valid_until: until }])
            }
        }
    }

    fn apply(&mut self, event: &TenantEvent) {
        self.version += 1;
        match event {
            TenantEvent::TenantCreated { widget_key, settings, .. } => {
                self.settings = Some(settings.clone());
                self.widget_key = Some(widget_key.clone());
            }
            TenantEvent::TenantSettingsChanged { settings } => self.settings = Some(settings.clone()),
            TenantEvent::WidgetKeyRotated { widget_key } => self.widget_key = Some(widget_key.clone()),
            TenantEvent::IdentitySecretRotated { key_id, previous, previous_valid_until } => {
                self.identity_secret = Some(key_id.clone());
                self.previous_identity_secret = previous.clone().zip(*previous_valid_until);
            }
        }
    }

    fn data_subject(&self, _event: &TenantEvent) -> Option<UserId> {
        None
    }

    fn version(&self) -> u64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    const KEY: &str = "wk_0123456789abcdefghijklmn";

    fn settings(origins: &[&str]) -> TenantSettings {
        TenantSettings::new(origins.iter().map(|s| s.to_string()).collect(), true)
    }
    fn created() -> TenantEvent {
        TenantEvent::TenantCreated {
            tenant: TenantId::parse("acme").unwrap(),
            name: "Acme".into(),
            widget_key: KEY.into(),
            settings: settings(&[]),
        }
    }

    #[test]
    fn a_tenant_is_created_once() {
        let create = TenantCommand::Create {
            tenant: TenantId::parse("acme").unwrap(),
            name: " Acme ".into(),
            widget_key: KEY.into(),
            settings: settings(&[]),
        };
        given::<Tenant>([]).when(create.clone()).then(vec![created()]);
        given::<Tenant>([created()]).when(create).then_err(TenantError::AlreadyExists);
    }

    #[test]
    fn origins_and_keys_are_checked() {
        for bad in ["shop.example.com", "https://shop.example.com/", "https://", "ftp://x", "https://a b"] {
            given::<Tenant>([created()])
                .when(TenantCommand::ChangeSettings { settings: settings(&[bad]) })
                .then_err(TenantError::InvalidOrigin(bad.into()));
        }
        given::<Tenant>([created()])
            .when(TenantCommand::ChangeSettings { settings: settings(&["https://shop.example.com", "http://localhost:3000"]) })
            .then(vec![TenantEvent::TenantSettingsChanged { settings: settings(&["https://shop.example.com", "http://localhost:3000"]) }]);
        given::<Tenant>([created()])
            .when(TenantCommand::RotateWidgetKey { widget_key: "short".into() })
            .then_err(TenantError::InvalidWidgetKey);
    }

    #[test]
    fn a_widget_key_is_rotated_only_on_an_existing_tenant() {
        let rotated = "wk_rotated_0123456789abcdefgh";
        given::<Tenant>([created()])
            .when(TenantCommand::RotateWidgetKey { widget_key: rotated.into() })
            .then(vec![TenantEvent::WidgetKeyRotated { widget_key: rotated.into() }]);
        given::<Tenant>([]).when(TenantCommand::RotateWidgetKey { widget_key: rotated.into() }).then_err(TenantError::NotFound);
    }

    #[test]
    fn the_handoff_retention_is_changed_within_its_range() {
        let with = |r: f64| TenantSettings { handoff_retention: r, ..settings(&[]) };
        for ok in [MIN_HANDOFF_RETENTION, 0.9, 0.98, MAX_HANDOFF_RETENTION] {
            given::<Tenant>([created()])
                .when(TenantCommand::ChangeSettings { settings: with(ok) })
                .then(vec![TenantEvent::TenantSettingsChanged { settings: with(ok) }]);
        }
        for bad in [0.79, 0.996, 1.0, 0.0, -0.9, f64::NAN, f64::INFINITY] {
            given::<Tenant>([created()])
                .when(TenantCommand::ChangeSettings { settings: with(bad) })
                .then_err(TenantError::InvalidHandoffRetention);
        }
        let create = TenantCommand::Create {
            tenant: TenantId::parse("acme").unwrap(),
            name: "Acme".into(),
            widget_key: KEY.into(),
            settings: with(0.5),
        };
        given::<Tenant>([]).when(create).then_err(TenantError::InvalidHandoffRetention);
    }

    #[test]
    fn settings_stored_before_the_handoff_retention_load_with_the_default() {
        let created = r#"{"type":"TenantCreated","tenant":"acme","name":"Acme","widget_key":"wk_0123456789abcdefghijklmn",
            "settings":{"allowed_origins":[],"self_signup":true}}"#;
        let changed = r#"{"type":"TenantSettingsChanged","settings":{"allowed_origins":["https://a.example"],"self_signup":false}}"#;
        let events: Vec<TenantEvent> = [created, changed].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
        let TenantEvent::TenantSettingsChanged { settings } = &events[1] else { panic!("not a settings change") };
        assert_eq!(settings.handoff_retention, DEFAULT_HANDOFF_RETENTION);
        let tenant = given::<Tenant>(events.clone())
            .when(TenantCommand::ChangeSettings { settings: TenantSettings { handoff_retention: 0.9, ..settings.clone() } })
            .then(vec![TenantEvent::TenantSettingsChanged { settings: TenantSettings { handoff_retention: 0.9, ..settings.clone() } }]);
        assert_eq!(tenant.settings().map(|s| s.handoff_retention), Some(0.9));
    }

    #[test]
    fn an_identity_secret_is_rotated_and_the_old_one_verifies_only_within_its_grace() {
        use crate::testing::now;
        let first = TenantEvent::IdentitySecretRotated { key_id: "is-1".into(), previous: None, previous_valid_until: None };
        let tenant = given::<Tenant>([created()])
            .when(TenantCommand::RotateIdentitySecret { key_id: "is-1".into(), grace_secs: 600 })
            .then(vec![first.clone()]);
        assert_eq!(tenant.identity_secrets(now()), ["is-1"]);
        let until = now() + chrono::Duration::seconds(600);
        let second =
            TenantEvent::IdentitySecretRotated { key_id: "is-2".into(), previous: Some("is-1".into()), previous_valid_until: Some(until) };
        let tenant = given::<Tenant>([created(), first.clone()])
            .when(TenantCommand::RotateIdentitySecret { key_id: "is-2".into(), grace_secs: 600 })
            .then(vec![second]);
        assert_eq!(tenant.identity_secrets(now()), ["is-2", "is-1"]);
        assert_eq!(tenant.identity_secrets(until), ["is-2"], "the grace ends");
        // No grace: the old secret stops at once.
        let tenant = given::<Tenant>([created(), first])
            .when(TenantCommand::RotateIdentitySecret { key_id: "is-3".into(), grace_secs: 0 })
            .then(vec![TenantEvent::IdentitySecretRotated {
                key_id: "is-3".into(),
                previous: Some("is-1".into()),
                previous_valid_until: Some(now()),
            }]);
        assert_eq!(tenant.identity_secrets(now()), ["is-3"]);
    }

    #[test]
    fn an_identity_secret_needs_a_tenant_a_key_id_and_a_bounded_grace() {
        given::<Tenant>([])
            .when(TenantCommand::RotateIdentitySecret { key_id: "is-1".into(), grace_secs: 0 })
            .then_err(TenantError::NotFound);
        given::<Tenant>([created()])
            .when(TenantCommand::RotateIdentitySecret { key_id: "is-1".into(), grace_secs: MAX_IDENTITY_SECRET_GRACE_SECS + 1 })
            .then_err(TenantError::InvalidGrace);
        for bad in ["", "a.b", "a/b", &"x".repeat(65)] {
            given::<Tenant>([created()])
                .when(TenantCommand::RotateIdentitySecret { key_id: bad.into(), grace_secs: 0 })
                .then_err(TenantError::InvalidKeyId);
        }
        assert!(Tenant::default().identity_secrets(crate::testing::now()).is_empty(), "no secret until one is made");
    }

    #[test]
    fn settings_stored_before_the_prechat_form_read_as_off() {
        let changed = r#"{"type":"TenantSettingsChanged","settings":{"allowed_origins":[],"self_signup":false}}"#;
        let TenantEvent::TenantSettingsChanged { settings } = serde_json::from_str(changed).unwrap() else {
            panic!("not a settings change")
        };
        assert_eq!(settings.prechat, PrechatMode::Off);
        let required = TenantSettings { prechat: PrechatMode::Required, ..settings };
        given::<Tenant>([created()])
            .when(TenantCommand::ChangeSettings { settings: required.clone() })
            .then(vec![TenantEvent::TenantSettingsChanged { settings: required }]);
    }

    #[test]
    fn unchanged_settings_are_a_no_op() {
        given::<Tenant>([created()]).when(TenantCommand::ChangeSettings { settings: settings(&[]) }).then_nothing();
        given::<Tenant>([]).when(TenantCommand::ChangeSettings { settings: settings(&[]) }).then_err(TenantError::NotFound);
    }
}
