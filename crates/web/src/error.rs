//! One error shape for the whole HTTP surface: `{"code", "message", "details"}` with stable
//! codes for `/api`, and readable pages for the browser. 5xx details are logged, never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keel_app::AppError;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `stale_version`.
    pub code: String,
    pub message: String,
    /// Per-field problems for `validation_failed`: `[{"field", "code", "message"}]`.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// An error as the API returns it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: serde_json::Value,
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), details: serde_json::Value::Null, retry_after: None }
    }
    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed".into(),
            message: "invalid input".into(),
            details: serde_json::json!([{ "field": field, "code": code, "message": message }]),
            retry_after: None,
        }
    }
}

pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Unauthenticated | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::Conflict { .. } | AppError::InvalidTransition(_) | AppError::ProcessDisabled(_) => StatusCode::CONFLICT,
        AppError::Stale => StatusCode::PRECONDITION_FAILED,
        AppError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = status_of(&e);
        let details = match &e {
            AppError::Validation(f) => serde_json::to_value(f).unwrap_or_default(),
            AppError::Conflict { field: Some(f), .. } => serde_json::json!([{ "field": f }]),
            _ => serde_json::Value::Null,
        };
        let message = if let AppError::Internal(detail) = &e {
            tracing::error!(error = %detail, "internal error");
            "internal error".to_string()
        } else {
            e.to_string()
        };
        ApiError {
            status,
            code: e.code().into(),
            message,
            details,
            retry_after: if let AppError::RateLimited { retry_after_secs } = e { Some(retry_after_secs) } else { None },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code, message: self.message, details: self.details };
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
