//! The worker: follows the event log and answers customers.
//!
//! It reads the log from the start, keeping every tenant's knowledge base
//! indexed as articles come and go, and from its checkpoint on, decides about
//! each customer message of a conversation that no human has taken over:
//! an `AnswerMessage` or a `RequestHandoff` command goes back through the
//! command handler. Both are idempotent in the domain (a message is answered
//! once, a handoff requested once), so after a crash the worker may see a
//! message again without answering twice.

use crate::answer::{Answerer, Decision};
use jamuna_commands::handler::{CommandContext, CommandError, CommandHandler};
use jamuna_commands::{EventLog, RecordedEvent, seal};
use jamuna_domain::conversation::{
    Author, Conversation, ConversationCommand, ConversationError, ConversationEvent,
};
use jamuna_domain::knowledge_base::KnowledgeBaseEvent;
use jamuna_domain::{AggregateKind, MessageText, TenantId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the worker remembers how far it answered.
pub struct Checkpoint {
    path: PathBuf,
}

impl Checkpoint {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn load(&self) -> u64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Written to a temporary file and renamed, so it is never half-written.
    pub fn store(&self, position: u64) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, position.to_string())?;
        std::fs::rename(tmp, &self.path)
    }
}

pub struct Worker {
    pub commands: Arc<CommandHandler>,
    pub answerer: Arc<Answerer>,
    pub checkpoint: Checkpoint,
}

impl Worker {
    /// Runs until the process stops; resubscribes after errors.
    pub async fn run(self, log: Arc<dyn EventLog>) {
        let answered_up_to = self.checkpoint.load();
        let mut position = 0;
        let mut last_store = Instant::now();
        loop {
            let mut sub = match log.subscribe_all(position).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "ai-worker cannot subscribe; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(next) = sub.next().await {
                let recorded = match next {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "ai-worker subscription failed; resubscribing");
                        break;
                    }
                };
                self.handle(&recorded, recorded.position > answered_up_to)
                    .await;
                position = recorded.position;
                if position > answered_up_to && last_store.elapsed() > Duration::from_millis(500) {
                    if let Err(e) = self.checkpoint.store(position) {
                        tracing::warn!(error = %e, "ai-worker cannot store its checkpoint");
                    }
                    last_store = Instant::now();
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn handle(&self, recorded: &RecordedEvent, answer: bool) {
        match recorded.stream.kind() {
            AggregateKind::KnowledgeBase => self.index(recorded).await,
            AggregateKind::Conversation if answer && recorded.event_type == "MessagePosted" => {
                self.answer(recorded).await
            }
            _ => {}
        }
    }

    async fn index(&self, recorded: &RecordedEvent) {
        let tenant = recorded.stream.tenant();
        let result = match seal::decode::<KnowledgeBaseEvent>(recorded) {
            Ok(
                KnowledgeBaseEvent::ArticleAdded {
                    article_id,
                    title,
                    body,
                    ..
                }
                | KnowledgeBaseEvent::ArticleUpdated {
                    article_id,
                    title,
                    body,
                },
            ) => self
                .answerer
                .index_article(tenant, &article_id, &title, &body)
                .await
                .map(|_| ()),
            Ok(KnowledgeBaseEvent::ArticleRemoved { article_id }) => {
                self.answerer.remove_article(tenant, &article_id);
                Ok(())
            }
            Err(e) => {
                tracing::error!(position = recorded.position, error = %e, "ai-worker cannot read a knowledge-base event");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(position = recorded.position, error = %e, "ai-worker cannot index an article");
        }
    }

    async fn answer(&self, recorded: &RecordedEvent) {
        let opened = match self
            .commands
            .sealer()
            .open::<ConversationEvent>(recorded)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(position = recorded.position, error = %e, "ai-worker cannot read a message");
                return;
            }
        };
        let ConversationEvent::MessagePosted {
            author: Author::Customer,
            text,
            ..
        } = &opened.data
        else {
            return;
        };
        let Some(text) = text.text().filter(|_| !text.is_erased()) else {
            return;
        };
        let stream = &recorded.stream;
        // Skip early when a human already has it (the domain refuses anyway).
        match self.commands.load::<Conversation>(stream).await {
            Ok(c)
                if c.human_involved()
                    || c.status() == Some(jamuna_domain::conversation::Status::Resolved) =>
            {
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "ai-worker cannot load a conversation");
                return;
            }
        }
        let tenant: &TenantId = stream.tenant();
        let decision = match self.answerer.decide(tenant, text).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "ai-worker cannot embed a message");
                return;
            }
        };
        let command = match decision {
            Decision::Answer {
                text,
                intent,
                confidence,
                sources,
            } => {
                let Ok(text) = MessageText::parse(&text) else {
                    return;
                };
                ConversationCommand::AnswerMessage {
                    in_reply_to: recorded.version,
                    text,
                    intent,
                    confidence,
                    sources,
                }
            }
            Decision::Handoff { reason, .. } => {
                metrics::counter!("jamuna_handoffs_total", "reason" => format!("{reason:?}"))
                    .increment(1);
                ConversationCommand::RequestHandoff { reason }
            }
        };
        let ctx = CommandContext {
            tenant: tenant.clone(),
            now: chrono::Utc::now(),
            correlation_id: recorded.meta.correlation_id,
            causation_id: Some(recorded.meta.event_id),
        };
        match self
            .commands
            .execute::<Conversation>(stream, &command, &ctx)
            .await
        {
            Ok(_) => {
                let latency = (chrono::Utc::now() - recorded.meta.occurred_at)
                    .to_std()
                    .unwrap_or_default();
                metrics::histogram!("jamuna_bot_answer_seconds").record(latency.as_secs_f64());
            }
            Err(CommandError::Rejected(
                ConversationError::HandedToHuman | ConversationError::AlreadyResolved,
            )) => {}
            Err(e) => {
                tracing::error!(error = %e, conversation = %stream, "ai-worker cannot answer")
            }
        }
    }
}
