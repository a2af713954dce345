//! Every reason a command is refused has a stable, machine-readable name.
//!
//! An aggregate's error (`ConversationError::AlreadyResolved`) reaches the
//! outside world as a code (`"already_resolved"`) that clients can match on,
//! beside a message for people. The code is part of the API: it never changes
//! when the message's wording does. Each error enum implements [`ErrorCode`]
//! beside its definition, so a new variant fails to compile until it is named.

/// The stable code of a business refusal, in `snake_case`.
///
/// ```
/// use jamuna_domain::ErrorCode;
/// use jamuna_domain::conversation::ConversationError;
/// assert_eq!(ConversationError::AlreadyResolved.code(), "already_resolved");
/// ```
pub trait ErrorCode {
    fn code(&self) -> &'static str;

    /// What kind of refusal this is; by default one of the state
    /// ([`Refusal::Conflict`]).
    fn refusal(&self) -> Refusal {
        Refusal::Conflict
    }
}

/// Why a command was refused, as far as a client must tell them apart (the
/// gateway answers 409, 422 and 404 for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The aggregate's state forbids it (a taken name, a resolved conversation).
    Conflict,
    /// The request itself is invalid, whatever the state.
    Invalid,
    /// It names something the aggregate does not hold.
    NotFound,
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use crate::ArticleId;
    use crate::conversation::ConversationError;
    use crate::knowledge_base::KnowledgeBaseError;
    use crate::tenant::TenantError;
    use crate::user::UserError;
    use std::collections::HashSet;

    fn assert_codes(errors: &[&dyn ErrorCode]) {
        let mut seen = HashSet::new();
        for e in errors {
            let code = e.code();
            assert!(!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code:?} is not snake_case");
            assert!(seen.insert(code), "{code} names two refusals");
        }
    }

    #[test]
    fn codes_are_snake_case_and_unique_per_aggregate() {
        use ConversationError as C;
        assert_codes(&[
            &C::NotStarted,
            &C::AlreadyStarted,
            &C::AlreadyResolved,
            &C::NotResolved,
            &C::HandedToHuman,
            &C::NotAnAgent,
            &C::OtherTenant,
            &C::UnknownMessage(1),
            &C::UnknownAnswer(1),
            &C::InvalidScore(9),
            &C::CommentTooLong,
            &C::NotFinite,
        ]);
        assert_codes(&[&crate::email_claim::EmailClaimError::AlreadyClaimed]);
        use crate::canned_reply::CannedReplyError as R;
        let r = crate::ids::CannedReplyId::parse("r").expect("an id");
        assert_codes(&[
            &R::InvalidShortcut,
            &R::InvalidText("x".into()),
            &R::UnknownPlaceholder("x".into()),
            &R::ShortcutTaken("x".into()),
            &R::TooMany,
            &R::UnknownReply(r.clone()),
            &R::AlreadyExists(r),
        ]);
        assert_codes(&[
            &UserError::AlreadyRegistered,
            &UserError::NotRegistered,
            &UserError::Erased,
            &UserError::NameTooLong,
            &UserError::NotACustomer,
            &UserError::InvalidExternalId,
            &UserError::InvalidAttributes,
        ]);
        use crate::team::TeamError as T;
        assert_codes(&[&T::NotFound, &T::AlreadyExists, &T::InvalidName, &T::NameTaken, &T::NotAnAgent, &T::OtherTenant]);
        {
            use crate::webhook::WebhookError as W;
            assert_codes(&[
                &W::TooManyWebhooks,
                &W::AlreadyRegistered,
                &W::UnknownWebhook,
                &W::UrlTooLong,
                &W::InvalidUrl,
                &W::InsecureUrl,
                &W::ForbiddenHost,
                &W::NoEventTypes,
                &W::UnknownEventType(String::new()),
                &W::InvalidSecret,
            ]);
        }
        let a = ArticleId::parse("a").expect("an article id");
        use KnowledgeBaseError as K;
        assert_codes(&[
            &K::ArticleExists(a.clone()),
            &K::UnknownArticle(a),
            &K::InvalidTitle,
            &K::InvalidBody,
            &K::InvalidExample,
            &K::InvalidAnswer,
            &K::TooManyExamples,
            &K::NoExamples,
            &K::ExamplesChanged,
            &K::NotFinite,
        ]);
        assert_codes(&[
            &TenantError::AlreadyExists,
            &TenantError::NotFound,
            &TenantError::InvalidName,
            &TenantError::InvalidWidgetKey,
            &TenantError::InvalidOrigin("x".into()),
            &TenantError::InvalidGrace,
            &TenantError::InvalidKeyId,
        ]);
    }
}
