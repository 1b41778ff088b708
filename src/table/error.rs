//! One error type for the table layer, mapped once to [`ApiError`] (which
//! each API writes in its own shape).

use crate::domain::api_error::ApiError;
use crate::runtime::{CommitError, MeshError};
use crate::storage::snapshot::SnapError;
use crate::storage::StoreError;

/// Why a table operation failed, by cause.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// No row with that id (or key).
    #[error("Not Found")]
    NotFound,
    /// A create body without a required field (or with it `null`).
    #[error("{0}: required")]
    Required(&'static str),
    /// A key that is not a field of the row.
    #[error("{field}: not a {table} field")]
    Unknown { field: String, table: &'static str },
    /// A field with a value of the wrong type or out of its rules.
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },
    /// A field a PATCH may not change.
    #[error("{0} of an entry cannot change: delete it and create another")]
    Fixed(&'static str),
    /// A referenced row that does not exist.
    #[error("{field}: {noun} {id} does not exist")]
    Missing {
        field: &'static str,
        noun: &'static str,
        id: u64,
    },
    /// A delete of a row that others still reference.
    #[error("{noun} {id} is referenced by {}", .by.join(", "))]
    Referenced {
        noun: &'static str,
        id: u64,
        /// `table field=id` of each referrer found (the first few).
        by: Vec<String>,
    },
    /// A unique key another row holds.
    #[error("{field} already provisioned ({holder} {id})")]
    Taken {
        field: &'static str,
        holder: &'static str,
        id: u64,
    },
    /// A unique key a concurrent request is claiming.
    #[error("{0} is being provisioned by a concurrent request")]
    Pending(&'static str),
    /// The row kept changing its unique keys under a PATCH.
    #[error("{0} changed concurrently: try again")]
    Conflict(&'static str),
    /// A stored row that does not decode (logged; the client sees a 500).
    #[error("damaged {0} record")]
    Damaged(&'static str),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Mesh(#[from] MeshError),
    #[error("the catalog has stopped")]
    CatalogStopped,
    /// Anything else that is the server's fault.
    #[error("{0}")]
    Internal(String),
}

impl TableError {
    /// A field error.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> TableError {
        TableError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<CommitError> for TableError {
    fn from(e: CommitError) -> TableError {
        match e {
            CommitError::Store(s) => TableError::Store(s),
            CommitError::Mesh(m) => TableError::Mesh(m),
            CommitError::Stopped => TableError::CatalogStopped,
        }
    }
}

impl From<TableError> for ApiError {
    fn from(e: TableError) -> ApiError {
        match e {
            TableError::NotFound => ApiError::NotFound,
            TableError::Store(s) => store_error(s),
            TableError::Mesh(m) => mesh_error(m),
            TableError::CatalogStopped => ApiError::ShuttingDown,
            TableError::Damaged(what) => {
                tracing::error!(table = what, "damaged record");
                ApiError::Internal("damaged record".into())
            }
            TableError::Internal(m) => ApiError::Internal(m),
            client => ApiError::bad_request(client.to_string()),
        }
    }
}

/// Maps a mesh failure to the error a client sees.
pub fn mesh_error(e: MeshError) -> ApiError {
    match e {
        MeshError::Busy(_) => ApiError::Overloaded,
        MeshError::Stopped(_) => ApiError::ShuttingDown,
        MeshError::NoSuchShard(s) => ApiError::Internal(format!("no shard {s}")),
    }
}

/// Maps a storage failure to the error a client sees (and logs it: the
/// client gets no detail of the server's disk).
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Busy => ApiError::Overloaded,
        StoreError::Stopped => ApiError::ShuttingDown,
        StoreError::Snapshot {
            source: source @ (SnapError::Damaged { .. } | SnapError::Malformed { .. }),
            path,
        } => {
            tracing::error!(file = %path.display(), error = %source, "damaged snapshot block read");
            ApiError::Internal(
                "stored data damaged: the block holding this row fails its checksum; restore the shard from a backup"
                    .into(),
            )
        }
        other => {
            tracing::error!(error = %other, "storage failure");
            ApiError::Internal("storage failure".into())
        }
    }
}

/// Maps a catalog commit failure to the error a client sees.
pub fn commit_error(e: CommitError) -> ApiError {
    ApiError::from(TableError::from(e))
}
