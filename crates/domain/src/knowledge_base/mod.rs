//! A tenant's knowledge base: the articles the bot answers from.
//!
//! A tenant has one knowledge base (one stream). Re-importing an unchanged
//! article produces no event, so an import can be run again safely.

pub mod import;

use crate::{Aggregate, AggregateKind, ArticleId, DomainEvent, Personal, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The largest article body, in bytes: an event stays well under 256 KiB.
pub const MAX_BODY_BYTES: usize = 200 * 1024;
pub const MAX_TITLE_CHARS: usize = 300;

#[derive(Debug, Clone, PartialEq)]
pub enum KnowledgeBaseCommand {
    AddArticle { tenant: TenantId, article_id: ArticleId, title: String, body: String, source: Option<String> },
    UpdateArticle { article_id: ArticleId, title: String, body: String },
    RemoveArticle { article_id: ArticleId },
    /// Adds new articles and updates changed ones, all in one append: an
    /// import is stored whole or not at all. Unchanged articles produce nothing.
    Import { tenant: TenantId, articles: Vec<import::Draft> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum KnowledgeBaseEvent {
    ArticleAdded { tenant: TenantId, article_id: ArticleId, title: String, body: String, source: Option<String> },
    ArticleUpdated { article_id: ArticleId, title: String, body: String },
    ArticleRemoved { article_id: ArticleId },
}

impl DomainEvent for KnowledgeBaseEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ArticleAdded { .. } => "ArticleAdded",
            Self::ArticleUpdated { .. } => "ArticleUpdated",
            Self::ArticleRemoved { .. } => "ArticleRemoved",
        }
    }

    /// Articles are the tenant's published content, not personal data.
    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        vec![]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnowledgeBaseError {
    #[error("article {0} already exists")]
    ArticleExists(ArticleId),
    #[error("there is no article {0}")]
    UnknownArticle(ArticleId),
    #[error("an article needs a title of 1 to {MAX_TITLE_CHARS} characters")]
    InvalidTitle,
    #[error("an article needs a body of at most {MAX_BODY_BYTES} bytes")]
    InvalidBody,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnowledgeBase {
    version: u64,
    /// Article → a fingerprint of its title and body, to spot unchanged updates.
    articles: HashMap<ArticleId, u64>,
}

fn fingerprint(title: &str, body: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (title, body).hash(&mut h);
    h.finish()
}

fn check(title: &str, body: &str) -> Result<(), KnowledgeBaseError> {
    let n = title.trim().chars().count();
    if n == 0 || n > MAX_TITLE_CHARS {
        return Err(KnowledgeBaseError::InvalidTitle);
    }
    if body.trim().is_empty() || body.len() > MAX_BODY_BYTES {
        return Err(KnowledgeBaseError::InvalidBody);
    }
    Ok(())
}

impl KnowledgeBase {
    pub fn contains(&self, id: &ArticleId) -> bool {
        self.articles.contains_key(id)
    }
    pub fn len(&self) -> usize {
        self.articles.len()
    }
    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }
}

impl Aggregate for KnowledgeBase {
    const KIND: AggregateKind = AggregateKind::KnowledgeBase;
    type Command = KnowledgeBaseCommand;
    type Event = KnowledgeBaseEvent;
    type Error = KnowledgeBaseError;

    fn decide(&self, command: &KnowledgeBaseCommand, _now: Timestamp) -> Result<Vec<KnowledgeBaseEvent>, KnowledgeBaseError> {
        use KnowledgeBaseCommand as C;
        use KnowledgeBaseEvent as V;
        match command {
            C::AddArticle { tenant, article_id, title, body, source } => {
                check(title, body)?;
                if self.articles.contains_key(article_id) {
                    return Err(KnowledgeBaseError::ArticleExists(article_id.clone()));
                }
                Ok(vec![V::ArticleAdded {
                    tenant: tenant.clone(),
                    article_id: article_id.clone(),
                    title: title.trim().to_owned(),
                    body: body.clone(),
                    source: source.clone(),
                }])
            }
            C::UpdateArticle { article_id, title, body } => {
                check(title, body)?;
                let known = self.articles.get(article_id).ok_or_else(|| KnowledgeBaseError::UnknownArticle(article_id.clone()))?;
                if *known == fingerprint(title.trim(), body) {
                    return Ok(vec![]);
                }
                Ok(vec![V::ArticleUpdated { article_id: article_id.clone(), title: title.trim().to_owned(), body: body.clone() }])
            }
            C::RemoveArticle { article_id } => {
                if !self.articles.contains_key(article_id) {
                    return Err(KnowledgeBaseError::UnknownArticle(article_id.clone()));
                }
                Ok(vec![V::ArticleRemoved { article_id: article_id.clone() }])
            }
            C::Import { tenant, articles } => {
                let mut events = Vec::new();
                for d in articles {
                    check(&d.title, &d.body)?;
                    match self.articles.get(&d.id) {
                        None => events.push(V::ArticleAdded {
                            tenant: tenant.clone(),
                            article_id: d.id.clone(),
                            title: d.title.trim().to_owned(),
                            body: d.body.clone(),
                            source: d.source.clone(),
                        }),
                        Some(known) if *known != fingerprint(d.title.trim(), &d.body) => {
                            events.push(V::ArticleUpdated { article_id: d.id.clone(), title: d.title.trim().to_owned(), body: d.body.clone() })
                        }
                        Some(_) => {}
                    }
                }
                Ok(events)
            }
        }
    }

    fn apply(&mut self, event: &KnowledgeBaseEvent) {
        self.version += 1;
        match event {
            KnowledgeBaseEvent::ArticleAdded { article_id, title, body, .. }
            | KnowledgeBaseEvent::ArticleUpdated { article_id, title, body } => {
                self.articles.insert(article_id.clone(), fingerprint(title, body));
            }
            KnowledgeBaseEvent::ArticleRemoved { article_id } => {
                self.articles.remove(article_id);
            }
        }
    }

    fn data_subject(&self, _event: &KnowledgeBaseEvent) -> Option<UserId> {
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

    fn id() -> ArticleId {
        ArticleId::parse("a1").unwrap()
    }
    fn added() -> KnowledgeBaseEvent {
        KnowledgeBaseEvent::ArticleAdded {
            tenant: TenantId::parse("acme").unwrap(),
            article_id: id(),
            title: "Card delivery".into(),
            body: "Cards arrive within 5 working days.".into(),
            source: None,
        }
    }
    fn add() -> KnowledgeBaseCommand {
        KnowledgeBaseCommand::AddArticle {
            tenant: TenantId::parse("acme").unwrap(),
            article_id: id(),
            title: " Card delivery ".into(),
            body: "Cards arrive within 5 working days.".into(),
            source: None,
        }
    }

    #[test]
    fn articles_are_added_once() {
        given::<KnowledgeBase>([]).when(add()).then(vec![added()]);
        given::<KnowledgeBase>([added()]).when(add()).then_err(KnowledgeBaseError::ArticleExists(id()));
    }

    #[test]
    fn an_unchanged_update_is_a_no_op() {
        let update = |body: &str| KnowledgeBaseCommand::UpdateArticle { article_id: id(), title: "Card delivery".into(), body: body.into() };
        given::<KnowledgeBase>([added()]).when(update("Cards arrive within 5 working days.")).then_nothing();
        given::<KnowledgeBase>([added()]).when(update("Cards arrive within 3 days.")).then(vec![KnowledgeBaseEvent::ArticleUpdated {
            article_id: id(),
            title: "Card delivery".into(),
            body: "Cards arrive within 3 days.".into(),
        }]);
        given::<KnowledgeBase>([]).when(update("x")).then_err(KnowledgeBaseError::UnknownArticle(id()));
    }

    #[test]
    fn removed_articles_are_gone() {
        let state = given::<KnowledgeBase>([added()])
            .when(KnowledgeBaseCommand::RemoveArticle { article_id: id() })
            .then(vec![KnowledgeBaseEvent::ArticleRemoved { article_id: id() }]);
        assert!(state.is_empty());
        given::<KnowledgeBase>([]).when(KnowledgeBaseCommand::RemoveArticle { article_id: id() }).then_err(KnowledgeBaseError::UnknownArticle(id()));
    }

    #[test]
    fn an_import_adds_new_updates_changed_and_skips_unchanged() {
        let draft = |id: &str, body: &str| import::Draft { id: ArticleId::parse(id).unwrap(), title: "Card delivery".into(), body: body.into(), source: None };
        let tenant = TenantId::parse("acme").unwrap();
        given::<KnowledgeBase>([added()])
            .when(KnowledgeBaseCommand::Import {
                tenant: tenant.clone(),
                articles: vec![draft("a1", "Cards arrive within 5 working days."), draft("a1x", "New"), ],
            })
            .then(vec![KnowledgeBaseEvent::ArticleAdded { tenant: tenant.clone(), article_id: ArticleId::parse("a1x").unwrap(), title: "Card delivery".into(), body: "New".into(), source: None }]);
        given::<KnowledgeBase>([added()])
            .when(KnowledgeBaseCommand::Import { tenant: tenant.clone(), articles: vec![draft("a1", "Changed")] })
            .then(vec![KnowledgeBaseEvent::ArticleUpdated { article_id: id(), title: "Card delivery".into(), body: "Changed".into() }]);
        given::<KnowledgeBase>([])
            .when(KnowledgeBaseCommand::Import { tenant, articles: vec![draft("a2", "ok"), draft("a3", " ")] })
            .then_err(KnowledgeBaseError::InvalidBody);
    }

    #[test]
    fn titles_and_bodies_are_checked() {
        let add = |title: &str, body: String| KnowledgeBaseCommand::AddArticle {
            tenant: TenantId::parse("acme").unwrap(),
            article_id: id(),
            title: title.into(),
            body,
            source: None,
        };
        given::<KnowledgeBase>([]).when(add(" ", "b".into())).then_err(KnowledgeBaseError::InvalidTitle);
        given::<KnowledgeBase>([]).when(add("t", " ".into())).then_err(KnowledgeBaseError::InvalidBody);
        given::<KnowledgeBase>([]).when(add("t", "x".repeat(MAX_BODY_BYTES + 1))).then_err(KnowledgeBaseError::InvalidBody);
    }
}
