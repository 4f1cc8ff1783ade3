//! The error a handler returns: the WIT `error` variant itself, with short
//! constructors, and the mapping from database errors.
//!
//! Using the generated type directly (rather than a wrapper) means a handler's
//! `Result<Response>` is exactly what the `handler` export returns, with no
//! conversion at the boundary. Every message is shown to the client, so none
//! may contain SQL, paths or secrets; details of internal failures go to the
//! log instead.

use crate::wit::db::{ConstraintKind, DbError};
use crate::wit::types::{ConflictInfo, FieldError};

pub use crate::wit::types::Error;

/// A handler's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// 400 for one bad field (query parameter or JSON field).
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput(vec![FieldError::new(field, message)])
    }

    /// 400 naming several bad fields at once.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        Self::InvalidInput(errors)
    }

    /// 400 for a request that is malformed as a whole.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(detail.into())
    }

    /// 401: the caller is not authenticated (or gave bad credentials).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::Unauthorized(detail.into())
    }

    /// 403: the caller is known but may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(detail.into())
    }

    /// 404: the thing named does not exist (or is hidden from the caller).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(detail.into())
    }

    /// 405: the path exists but not with this method.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::MethodNotAllowed(detail.into())
    }

    /// 409 with a stable slug (`username-taken`, `insufficient-funds`) that
    /// becomes the problem type `urn:souk:error:<code>`.
    pub fn conflict(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Conflict(ConflictInfo {
            code: code.into(),
            detail: detail.into(),
        })
    }

    /// 503: a dependency is unavailable; the client may retry.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable(detail.into())
    }

    /// 500 for a failure the component detected without trapping. Log the
    /// details separately; this message is shown to the client.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal(detail.into())
    }
}

impl FieldError {
    /// A field (or query parameter) and why it was rejected.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The default mapping, for `?` in handlers. Constraint violations that mean
/// something to the client (a unique username) should be mapped by the caller
/// first, with [`OnConstraint::on_unique`]; what is left here is either a
/// generic conflict or a bug.
impl From<DbError> for Error {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Constraint(ConstraintKind::Unique) => Error::conflict(
                "conflict",
                "the request conflicts with data that already exists",
            ),
            DbError::Constraint(ConstraintKind::ForeignKey) => {
                Error::conflict("conflict", "the request conflicts with related data")
            }
            // Input validation should have caught these before the database did.
            DbError::Constraint(kind @ (ConstraintKind::Check | ConstraintKind::NotNull)) => {
                crate::log::error!("database constraint violated: {kind:?}");
                Error::internal("internal error")
            }
            DbError::Unavailable(detail) => {
                crate::log::warn!("database unavailable: {detail}");
                Error::unavailable("the database is unavailable; try again later")
            }
            DbError::Refused(detail) => {
                crate::log::error!("statement refused by the host: {detail}");
                Error::internal("internal error")
            }
            DbError::Failed(detail) => {
                crate::log::error!("database failure: {detail}");
                Error::internal("internal error")
            }
        }
    }
}

/// Turns a constraint violation into the error the client should see,
/// leaving every other database error to the default mapping.
pub trait OnConstraint<T> {
    /// Maps a UNIQUE (or primary key) violation to `error()`, for example
    /// `Error::conflict("username-taken", ...)`.
    fn on_unique(self, error: impl FnOnce() -> Error) -> Result<T>;
}

impl<T> OnConstraint<T> for Result<T, DbError> {
    fn on_unique(self, error: impl FnOnce() -> Error) -> Result<T> {
        match self {
            Ok(value) => Ok(value),
            Err(DbError::Constraint(ConstraintKind::Unique)) => Err(error()),
            Err(other) => Err(other.into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_map_to_the_callers_conflict() {
        let result: Result<(), DbError> = Err(DbError::Constraint(ConstraintKind::Unique));
        let error = result
            .on_unique(|| Error::conflict("username-taken", "taken"))
            .unwrap_err();
        assert_eq!(error, Error::conflict("username-taken", "taken"));
    }

    #[test]
    fn other_database_errors_keep_the_default_mapping() {
        let result: Result<(), DbError> = Err(DbError::Unavailable("down".into()));
        let error = result
            .on_unique(|| Error::conflict("username-taken", "taken"))
            .unwrap_err();
        assert!(matches!(error, Error::Unavailable(_)));
    }

    #[test]
    fn failures_hide_their_detail_from_the_client() {
        for db_error in [
            DbError::Failed("syntax error near SELEC".into()),
            DbError::Refused("table customers_secret is not yours".into()),
            DbError::Constraint(ConstraintKind::Check),
        ] {
            assert_eq!(Error::from(db_error), Error::internal("internal error"));
        }
    }

    #[test]
    fn unavailable_stays_retryable() {
        let error = Error::from(DbError::Unavailable("pool timed out at /var/db".into()));
        let Error::Unavailable(detail) = error else {
            panic!("expected unavailable, got {error:?}");
        };
        assert!(!detail.contains("/var/db"));
    }
}
