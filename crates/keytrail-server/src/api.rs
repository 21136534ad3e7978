//! The routes of `/api/v1` and the JSON they answer. Each handler checks
//! the caller's role first, then parses its parameters (every one named
//! when it is wrong), then calls the store. The shapes are written here,
//! field by field, from the store's types: nothing reaches a response by
//! serialising a type that might one day hold a secret.

use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use keytrail_store::{Filter, Role, Status, StoredFinding, Triage};
use keytrail_types::Severity;
use serde_json::{Value, json};

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Findings a list answers when `limit` is not given, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/me", get(me))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/findings/{fingerprint}", get(finding).patch(triage))
        .route("/api/v1/posture", get(posture))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/exposure", get(exposure))
        .route("/api/v1/runs", get(runs))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route: the API is under /api/v1 (its routes are in /api/v1/openapi.json)",
    )
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let t = state.authorize(&headers, Role::Viewer).await?;
    Ok(Json(json!({"name": t.name, "role": t.role.as_str()})))
}

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The query's pairs, or 400 when the query string does not parse.
fn pairs(q: Params) -> Result<Vec<(String, String)>, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", e.body_text()))
}

/// A listing's filter from its query parameters; `kind` is fixed by the
/// route when given (then the parameter is refused).
fn filter(pairs: Vec<(String, String)>, kind: Option<&str>) -> Result<Filter, ApiError> {
    let mut f = Filter {
        kind: kind.map(str::to_string),
        limit: Some(DEFAULT_LIMIT),
        ..Filter::default()
    };
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in pairs {
        if value.contains('\0') {
            return Err(ApiError::parameter(&name, "holds a NUL character"));
        }
        if name != "status" && seen.contains(&name) {
            return Err(ApiError::parameter(&name, "given twice"));
        }
        seen.push(name.clone());
        let text = || Some(value.clone()).filter(|v| !v.is_empty());
        match name.as_str() {
            "kind" if kind.is_none() => {
                let k = text().ok_or_else(|| ApiError::parameter(&name, "empty"))?;
                if !["secret", "posture", "alert", "exposure"].contains(&k.as_str()) {
                    return Err(ApiError::parameter(
                        &name,
                        format!("unknown kind `{k}` (secret, posture, alert or exposure)"),
                    ));
                }
                f.kind = Some(k);
            }
            "status" => {
                for s in value.split(',') {
                    let s: Status = s
                        .trim()
                        .parse()
                        .map_err(|e: String| ApiError::parameter(&name, e))?;
                    if !f.statuses.contains(&s) {
                        f.statuses.push(s);
                    }
                }
            }
            "min_severity" => {
                f.min_severity = Some(value.parse::<Severity>().map_err(|_| {
                    ApiError::parameter(
                        &name,
                        format!("unknown severity `{value}` (info, low, medium, high or critical)"),
                    )
                })?);
            }
            "rule_id" => f.rule_id = text(),
            "target" => f.target = text(),
            "owner" => f.owner = text(),
            "assignee" => f.assignee = text(),
            "after" => {
                let a: i64 = value.parse().map_err(|_| {
                    ApiError::parameter(
                        &name,
                        format!("`{value}` is not a finding id (an integer)"),
                    )
                })?;
                if a < 0 {
                    return Err(ApiError::parameter(&name, "must be 0 or more"));
                }
                f.after_id = Some(a);
            }
            "limit" => {
                let n: usize = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::parameter(
                            &name,
                            format!("`{value}` is not a number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
                f.limit = Some(n);
            }
            _ => {
                return Err(ApiError::parameter(
                    &name,
                    "unknown (see /api/v1/openapi.json for this route's parameters)",
                ));
            }
        }
    }
    Ok(f)
}

/// A finding as listed: what it is, where it stands, no locations.
fn summary(f: &StoredFinding) -> Value {
    let mut v = json!({
        "id": f.id,
        "fingerprint": f.finding.fingerprint.0,
        "kind": f.kind,
        "rule_id": f.finding.rule_id,
        "title": f.finding.rule_name,
        "severity": f.finding.severity.as_str(),
        "confidence": f.finding.confidence,
        "redacted": f.finding.secret_redacted,
        "status": f.status.as_str(),
        "assignee": f.assignee,
        "owner": f.owner,
        "first_seen": f.first_seen,
        "last_seen": f.last_seen,
        "fixed_at": f.fixed_at,
        "version": f.version,
        "targets": f.targets,
        "occurrences": f.finding.locations.len(),
        "verification": f.finding.verification.as_ref().map(|v| {
            json!({"status": v.status, "identity": v.identity})
        }),
    });
    if let Some(raw) = &f.raw {
        v["record"] = raw.clone();
    }
    v
}

async fn list(
    state: AppState,
    headers: HeaderMap,
    q: Params,
    kind: Option<&'static str>,
) -> Result<Json<Value>, ApiError> {
    state.authorize(&headers, Role::Viewer).await?;
    let f = filter(pairs(q)?, kind)?;
    let limit = f.limit.unwrap_or(DEFAULT_LIMIT);
    let found = state.with_store(move |s| s.list_findings(&f)).await?;
    let next = (found.len() == limit)
        .then(|| found.last().map(|f| f.id))
        .flatten();
    Ok(Json(json!({
        "findings": found.iter().map(summary).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

async fn findings(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    list(state, headers, q, None).await
}

async fn posture(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    list(state, headers, q, Some("posture")).await
}

async fn alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    list(state, headers, q, Some("alert")).await
}

async fn exposure(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    list(state, headers, q, Some("exposure")).await
}

/// A finding with everything the store knows of it.
fn detail(
    f: &StoredFinding,
    audit: &[keytrail_store::AuditEntry],
    comments: &[keytrail_store::Comment],
) -> Value {
    let mut v = summary(f);
    v["locations"] = json!(f.finding.locations);
    v["verification"] = json!(f.finding.verification);
    v["blast_radius"] = json!(f.finding.blast_radius);
    v["notes"] = json!(f.finding.notes);
    v["context"] = json!(f.finding.context);
    v["remediation"] = json!(f.finding.remediation);
    v["history"] = json!({"audit": audit, "comments": comments});
    v
}

/// A fingerprint of the path: text a database can hold.
fn path_fingerprint(fp: &str) -> Result<(), ApiError> {
    if fp.contains('\0') || fp.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "path parameter `fingerprint`: empty or holds a NUL character",
        ));
    }
    Ok(())
}

fn no_params(q: Params) -> Result<(), ApiError> {
    match pairs(q)?.into_iter().next() {
        Some((name, _)) => Err(ApiError::parameter(
            &name,
            "unknown (this route takes none)",
        )),
        None => Ok(()),
    }
}

async fn finding(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(fingerprint): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    state.authorize(&headers, Role::Viewer).await?;
    no_params(q)?;
    path_fingerprint(&fingerprint)?;
    let out = state
        .with_store(move |s| {
            let fp = s.resolve(&fingerprint)?;
            let f = s.finding(&fp)?;
            let (audit, comments) = s.history(&fp)?;
            Ok((f, audit, comments))
        })
        .await?;
    match out {
        (Some(f), audit, comments) => Ok(Json(detail(&f, &audit, &comments))),
        (None, ..) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the finding is gone",
        )),
    }
}

/// `Some(None)` for JSON null, `Some(Some(s))` for a string.
fn nullable(v: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::body(format!("field `{field}`: a string or null"))),
    }
}

async fn triage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(fingerprint): Path<String>,
    q: Params,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize(&headers, Role::Triager).await?;
    no_params(q)?;
    path_fingerprint(&fingerprint)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::body(format!("the body is not JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(ApiError::body("the body is not a JSON object"));
    };
    if let Some((field, _)) = map
        .iter()
        .find(|(_, v)| v.as_str().is_some_and(|s| s.contains('\0')))
    {
        return Err(ApiError::body(format!(
            "field `{field}`: holds a NUL character"
        )));
    }
    let mut change = Triage {
        actor: who.name.clone(),
        ..Triage::default()
    };
    for (field, value) in &map {
        match field.as_str() {
            "status" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| ApiError::body("field `status`: a string"))?;
                change.status = Some(
                    s.parse()
                        .map_err(|e: String| ApiError::body(format!("field `status`: {e}")))?,
                );
            }
            "assignee" => change.assignee = Some(nullable(value, field)?),
            "owner" => change.owner = Some(nullable(value, field)?),
            "comment" => {
                let c = value
                    .as_str()
                    .filter(|c| !c.trim().is_empty())
                    .ok_or_else(|| ApiError::body("field `comment`: a non-empty string"))?;
                change.comment = Some(c.to_string());
            }
            "if_version" => {
                change.if_version = Some(value.as_i64().filter(|v| *v >= 1).ok_or_else(|| {
                    ApiError::body("field `if_version`: the version read (an integer, 1 or more)")
                })?);
            }
            other => {
                return Err(ApiError::body(format!(
                    "unknown field `{other}` (status, assignee, owner, comment, if_version)"
                )));
            }
        }
    }
    if map.keys().all(|k| k == "if_version") {
        return Err(ApiError::body(
            "nothing to change: give status, assignee, owner or comment",
        ));
    }
    let out = state
        .with_store(move |s| {
            let fp = s.resolve(&fingerprint)?;
            let f = s.triage(&fp, &change)?;
            let (audit, comments) = s.history(&fp)?;
            Ok((f, audit, comments))
        })
        .await?;
    Ok(Json(detail(&out.0, &out.1, &out.2)))
}

async fn runs(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    state.authorize(&headers, Role::Viewer).await?;
    no_params(q)?;
    let runs = state.with_store(|s| s.runs()).await?;
    Ok(Json(json!({"runs": runs})))
}
