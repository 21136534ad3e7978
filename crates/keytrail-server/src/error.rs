//! The API's one error type: an HTTP status and a JSON body
//! `{"error": {"code", "message"}}` whose message says what was wrong
//! (the parameter, the field, the database that went away).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keytrail_store::{ErrorKind, StoreError};

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (`unauthorized`, `bad_parameter`…).
    pub code: &'static str,
    /// What was wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: a query parameter that is unknown or does not parse.
    pub fn parameter(name: &str, what: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            format!("query parameter `{name}`: {what}"),
        )
    }

    /// 400: a request body that is not what the route takes.
    pub fn body(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_body", what)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let (status, code) = match e.kind {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "version_conflict"),
            ErrorKind::Invalid => (StatusCode::BAD_REQUEST, "invalid"),
            ErrorKind::Locked => (StatusCode::SERVICE_UNAVAILABLE, "database_locked"),
            ErrorKind::Unreachable => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            ErrorKind::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "database_timeout"),
            ErrorKind::Corrupt
            | ErrorKind::TooNew
            | ErrorKind::NotKeytrail
            | ErrorKind::Key
            | ErrorKind::Other => (StatusCode::INTERNAL_SERVER_ERROR, "database_error"),
        };
        ApiError::new(status, code, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"keytrail\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        r
    }
}
