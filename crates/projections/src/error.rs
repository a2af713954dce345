//! What can go wrong on the read side.
//!
//! Two families, because the projector treats them differently:
//!
//! * [`StoreError`] — the read-model store (SQLite, MongoDB). `Unavailable`
//!   and `Conflict` are transient: the projector backs off and resubscribes
//!   from its checkpoint. `Internal` is a bug or a broken store: it stops the
//!   projection. `Invalid` is a caller's mistake in a query (a bad cursor).
//! * [`ProjectionError`] — applying events. A `BadEvent` (a payload that does
//!   not decode, personal data that does not open, an event the fold cannot
//!   place) stops the projection at that event, loudly; it is never skipped.

type Source = Box<dyn std::error::Error + Send + Sync>;

/// A read-model store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed what this write was based on; try again.
    #[error("the read model changed underneath this write: {0}")]
    Conflict(String),
    /// The query cannot be answered as asked (e.g. a cursor that is not ours).
    #[error("invalid query: {0}")]
    Invalid(String),
    #[error("the read-model store is unavailable: {0}")]
    Unavailable(#[source] Source),
    #[error("read-model store failure: {0}")]
    Internal(#[source] Source),
}

impl StoreError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Internal(Box::new(e))
    }
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
    /// Worth retrying later: the same write may well succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::Unavailable(_))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked | CannotOpen | DiskFull | SystemIoFailure) => StoreError::unavailable(e),
            _ => StoreError::internal(e),
        }
    }
}

impl From<mongodb::error::Error> for StoreError {
    fn from(e: mongodb::error::Error) -> Self {
        use mongodb::error::ErrorKind;
        match &*e.kind {
            ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::DnsResolve { .. } => StoreError::unavailable(e),
            _ if is_duplicate_key(&e) => StoreError::Conflict(e.to_string()),
            _ => StoreError::internal(e),
        }
    }
}

/// MongoDB's E11000: an insert met a document with the same `_id`.
pub(crate) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        ErrorKind::InsertMany(m) => m.write_errors.as_ref().is_some_and(|ws| ws.iter().any(|w| w.code == 11000)),
        _ => false,
    }
}

/// Applying events to a read model failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event at `position` cannot be applied: its payload does not decode,
    /// its personal data does not open, or the fold cannot place it. The
    /// projection stops here; fix the cause and restart it (or replay).
    #[error("the event at position {position} cannot be applied: {reason}")]
    BadEvent { position: u64, reason: String },
    /// The key store could not be asked for a data key; transient.
    #[error("the key store is unavailable: {0}")]
    Keys(#[source] jamuna_commands::KeyStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProjectionError {
    pub fn bad_event(position: u64, reason: impl std::fmt::Display) -> Self {
        ProjectionError::BadEvent { position, reason: reason.to_string() }
    }
    /// Worth retrying (after a back-off, from the checkpoint).
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectionError::BadEvent { .. } => false,
            ProjectionError::Keys(_) => true,
            ProjectionError::Store(e) => e.is_transient(),
        }
    }
}

impl From<rusqlite::Error> for ProjectionError {
    fn from(e: rusqlite::Error) -> Self {
        ProjectionError::Store(e.into())
    }
}

impl From<mongodb::error::Error> for ProjectionError {
    fn from(e: mongodb::error::Error) -> Self {
        ProjectionError::Store(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_told_apart() {
        assert!(StoreError::Conflict("x".into()).is_transient());
        assert!(StoreError::unavailable(std::io::Error::other("down")).is_transient());
        assert!(!StoreError::internal(std::io::Error::other("bug")).is_transient());
        assert!(!ProjectionError::bad_event(3, "nope").is_transient());
        assert!(ProjectionError::Store(StoreError::Conflict("x".into())).is_transient());
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        assert!(StoreError::from(busy).is_transient());
    }
}
