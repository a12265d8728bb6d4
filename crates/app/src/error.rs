//! The errors every use case returns, each with a stable code for the API and the UI.

use keel_domain::{DomainError, FieldError};
use keel_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    #[error("not signed in")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Conflict { code: &'static str, field: Option<String>, message: String },
    #[error("the record was changed by someone else; reload and try again")]
    Stale,
    #[error("If-Match is required for this update")]
    PreconditionRequired,
    #[error("too many attempts; try again later")]
    RateLimited { retry_after_secs: i64 },
    #[error("invalid e-mail or password")]
    BadCredentials,
    #[error("the {0} process is switched off for this service project")]
    ProcessDisabled(String),
    #[error("{0}")]
    InvalidTransition(String),
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl AppError {
    /// The stable machine-readable code (documented in docs/architecture.md).
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Conflict { code, .. } => code,
            AppError::Stale => "stale_version",
            AppError::PreconditionRequired => "precondition_required",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::BadCredentials => "bad_credentials",
            AppError::ProcessDisabled(_) => "process_disabled",
            AppError::InvalidTransition(_) => "invalid_transition",
            AppError::Internal(_) => "internal",
        }
    }

    pub fn field(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, code, message)])
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(f) => AppError::Validation(f),
            DomainError::InvalidTransition { .. } => AppError::InvalidTransition(e.to_string()),
            DomainError::ProcessDisabled(p) => AppError::ProcessDisabled(p),
            DomainError::Conflict(m) => AppError::Conflict { code: "conflict", field: None, message: m },
        }
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        AppError::Validation(vec![e])
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique { field } => {
                AppError::Validation(vec![FieldError::new(field.clone(), "already_taken", format!("this {field} is already in use"))])
            }
            StoreError::ForeignKey => {
                AppError::Validation(vec![FieldError::new("reference", "unknown_reference", "a referenced record does not exist")])
            }
            StoreError::NotFound => AppError::NotFound,
            StoreError::Stale => AppError::Stale,
            other => AppError::Internal(other.to_string()),
        }
    }
}
