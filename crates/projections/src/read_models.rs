//! All of Jamuna's read models together, opened from configuration.
//!
//! The embedded mode keeps them in SQLite files under `<data>/read/`
//! (`conversations.db`, `users.db`, `analytics.db`, `gaps.db`: one file per model, so
//! their projections never wait on each other's writes); the distributed mode
//! keeps them in one MongoDB database. Either way the gateway gets the
//! same ports and the projector the same three projections (the gaps model's
//! projection runs in the AI worker, which has the model).

use crate::analytics::{AnalyticsStore, mongo::MongoAnalytics, sqlite::SqliteAnalytics};
use crate::conversations::{ConversationStore, mongo::MongoConversations, sqlite::SqliteConversations};
use crate::error::StoreError;
use crate::gaps::{GapStore, TextEncoder, mongo::MongoGaps, sqlite::SqliteGaps};
use crate::mongo::MongoReadDb;
use crate::runtime::{Projection, Projector};
use crate::users::{UserStore, mongo::MongoUsers, sqlite::SqliteUsers};
use jamuna_commands::Sealer;
use std::path::Path;
use std::sync::Arc;

/// The read models' ports.
#[derive(Clone)]
pub struct ReadModels {
    pub conversations: Arc<dyn ConversationStore>,
    pub users: Arc<dyn UserStore>,
    pub analytics: Arc<dyn AnalyticsStore>,
    /// The content gaps: its projection needs the model, so it is not among
    /// [`ReadModels::projections`] (see [`ReadModels::gaps_projection`]).
    pub gaps: Arc<dyn GapStore>,
}

impl ReadModels {
    /// SQLite files in `dir` (created if missing), e.g. `<data>/read`.
    pub fn open_sqlite(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        Ok(Self {
            conversations: Arc::new(SqliteConversations::open(dir.join("conversations.db"))?),
            users: Arc::new(SqliteUsers::open(dir.join("users.db"))?),
            analytics: Arc::new(SqliteAnalytics::open(dir.join("analytics.db"))?),
            gaps: Arc::new(SqliteGaps::open(dir.join("gaps.db"))?),
        })
    }

    /// Collections in the MongoDB database `database` at `url` (`mongodb://host:port`).
    pub async fn connect_mongo(url: &str, database: &str) -> Result<Self, StoreError> {
        let db = MongoReadDb::connect(url, database).await?;
        Ok(Self {
            conversations: Arc::new(MongoConversations::new(db.clone()).await?),
            users: Arc::new(MongoUsers::new(db.clone()).await?),
            analytics: Arc::new(MongoAnalytics::new(db.clone()).await?),
            gaps: Arc::new(MongoGaps::new(db).await?),
        })
    }

    /// The projections that keep these read models up to date.
    pub fn projections(&self, sealer: &Sealer) -> Vec<Arc<dyn Projection>> {
        vec![
            crate::conversations::projection(self.conversations.clone(), sealer.clone()),
            crate::users::projection(self.users.clone(), sealer.clone()),
            crate::analytics::projection(self.analytics.clone(), sealer.clone()),
        ]
    }

    /// The projection of the content gaps, whose questions `encoder` embeds
    /// (the AI worker runs it: it has the model).
    pub fn gaps_projection(&self, sealer: &Sealer, encoder: Arc<dyn TextEncoder>) -> Arc<dyn Projection> {
        crate::gaps::projection(self.gaps.clone(), encoder, sealer.clone())
    }

    /// A projector over `log` with every projection added (not started).
    pub fn projector(&self, log: Arc<dyn jamuna_commands::EventLog>, sealer: &Sealer) -> Projector {
        let mut p = Projector::new(log);
        for projection in self.projections(sealer) {
            p.add(projection);
        }
        p
    }
}
