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
use axum::routing::{get, post};
use axum::{Json, Router};
use keytrail_store::{Filter, Role, Status, StoredFinding, Triage};
use keytrail_types::Severity;
use serde_json::{Value, json};

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Findings a list answers when `limit` is not given, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The kinds of finding the store holds.
const KINDS: [&str; 5] = ["secret", "posture", "alert", "exposure", "inventory"];

/// Inventory kinds that are long-lived credentials (as opposed to the
/// identities that hold them).
const LONG_LIVED_KINDS: [&str; 4] = [
    "aws.iam.access_key",
    "gcp.service_account_key",
    "entra.client_secret",
    "entra.certificate",
];

/// Points a trend has at most (the newest runs).
const TREND_POINTS: usize = 90;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/me", get(me))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/findings/triage", post(triage_many))
        .route("/api/v1/findings/{fingerprint}", get(finding).patch(triage))
        .route("/api/v1/posture", get(posture))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/exposure", get(exposure))
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/inventory", get(inventory))
        .route("/api/v1/trends", get(trends))
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
    let mut v = json!({"name": t.name, "role": t.role.as_str()});
    // A browser session's CSRF token, which its changes must carry.
    if !headers.contains_key(header::AUTHORIZATION)
        && let Some((_, csrf)) = state.session(&headers).await?
    {
        v["csrf"] = json!(csrf);
    }
    Ok(Json(v))
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
                if !KINDS.contains(&k.as_str()) {
                    return Err(ApiError::parameter(
                        &name,
                        format!(
                            "unknown kind `{k}` (secret, posture, alert, exposure or inventory)"
                        ),
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
            "order" => {
                f.newest_first = match value.as_str() {
                    "oldest" => false,
                    "newest" => true,
                    other => {
                        return Err(ApiError::parameter(
                            &name,
                            format!("`{other}` is not `oldest` or `newest`"),
                        ));
                    }
                };
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

async fn inventory(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    list(state, headers, q, Some("inventory")).await
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

/// A secret's exposure records (`keytrail exposure` joins a leaked key
/// with CloudTrail: live, used after the leak, by whom) and the alerts
/// they name. An exposure record names the secret by its redacted form and
/// rule ids, not its fingerprint: both must match.
fn related(v: &mut Value, f: &StoredFinding, exposure: &[StoredFinding]) {
    let mine: Vec<&Value> = exposure
        .iter()
        .filter_map(|e| e.raw.as_ref())
        .filter(|r| {
            r["secret_redacted"].as_str() == Some(f.finding.secret_redacted.as_str())
                && !f.finding.secret_redacted.is_empty()
                && r["rule_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i.as_str() == Some(&f.finding.rule_id)))
        })
        .collect();
    let alerts: Vec<&Value> = mine
        .iter()
        .filter_map(|r| r["alerts"].as_array())
        .flatten()
        .collect();
    v["exposure"] = json!(mine);
    v["alerts"] = json!(alerts);
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
            let exposure = match &f {
                Some(f) if f.kind == "secret" => s.list_findings(&Filter {
                    kind: Some("exposure".into()),
                    ..Filter::default()
                })?,
                _ => Vec::new(),
            };
            Ok((f, audit, comments, exposure))
        })
        .await?;
    match out {
        (Some(f), audit, comments, exposure) => {
            let mut v = detail(&f, &audit, &comments);
            related(&mut v, &f, &exposure);
            Ok(Json(v))
        }
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

/// A request body that must be a JSON object without NUL characters in
/// its strings.
fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body)
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
    Ok(map)
}

/// The triage a body asks for: `status`, `assignee`, `owner`, `comment`
/// and (`one`: a single finding) `if_version`; `fingerprints` is the bulk
/// route's, read by it.
fn change_of(
    map: &serde_json::Map<String, Value>,
    actor: &str,
    one: bool,
) -> Result<Triage, ApiError> {
    let mut change = Triage {
        actor: actor.to_string(),
        ..Triage::default()
    };
    for (field, value) in map {
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
            "if_version" if one => {
                change.if_version = Some(value.as_i64().filter(|v| *v >= 1).ok_or_else(|| {
                    ApiError::body("field `if_version`: the version read (an integer, 1 or more)")
                })?);
            }
            "fingerprints" if !one => {}
            other => {
                return Err(ApiError::body(if one {
                    format!(
                        "unknown field `{other}` (status, assignee, owner, comment, if_version)"
                    )
                } else {
                    format!(
                        "unknown field `{other}` (fingerprints, status, assignee, owner, comment)"
                    )
                }));
            }
        }
    }
    if map.keys().all(|k| k == "if_version" || k == "fingerprints") {
        return Err(ApiError::body(
            "nothing to change: give status, assignee, owner or comment",
        ));
    }
    Ok(change)
}

/// Findings a bulk triage takes at most.
const MAX_BULK: usize = 1000;

/// `POST /api/v1/findings/triage`: one change to many findings, all or
/// none, each audited.
async fn triage_many(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize_write(&headers, Role::Triager).await?;
    no_params(q)?;
    let map = body_object(&body)?;
    let fps: Vec<String> = match map.get("fingerprints") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_BULK => a
            .iter()
            .map(|v| {
                v.as_str()
                    .filter(|s| !s.is_empty() && !s.contains('\0'))
                    .map(str::to_string)
                    .ok_or_else(|| {
                        ApiError::body(
                            "field `fingerprints`: every item a non-empty string without NUL characters",
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::body(format!(
                "field `fingerprints`: an array of 1 to {MAX_BULK} fingerprints"
            )));
        }
    };
    let change = change_of(&map, &who.name, false)?;
    let found = state
        .with_store(move |s| s.triage_many(&fps, &change))
        .await?;
    Ok(Json(json!({
        "findings": found.iter().map(summary).collect::<Vec<_>>(),
    })))
}

async fn triage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(fingerprint): Path<String>,
    q: Params,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = state.authorize_write(&headers, Role::Triager).await?;
    no_params(q)?;
    path_fingerprint(&fingerprint)?;
    let map = body_object(&body)?;
    let change = change_of(&map, &who.name, true)?;
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

/// The throughput window of `/api/v1/jobs`.
const THROUGHPUT_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
/// A worker without a heartbeat for this long is shown as gone.
const WORKER_ALIVE: std::time::Duration = std::time::Duration::from_secs(30);

async fn jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    state.authorize(&headers, Role::Viewer).await?;
    no_params(q)?;
    let since = keytrail_store::time_ago(THROUGHPUT_WINDOW);
    let alive_since = keytrail_store::time_ago(WORKER_ALIVE);
    let (counts, workers, jobs) = state
        .with_store(move |s| {
            let counts = s.job_counts(&since)?;
            let workers = s.workers()?;
            let jobs = s.jobs(&keytrail_store::JobFilter {
                limit: Some(100),
                ..Default::default()
            })?;
            Ok((counts, workers, jobs))
        })
        .await?;
    let workers: Vec<Value> = workers
        .iter()
        .map(|w| {
            json!({
                "name": w.name,
                "host": w.host,
                "pid": w.pid,
                "started_at": w.started_at,
                "heartbeat_at": w.heartbeat_at,
                "job_key": w.job_key,
                "jobs_done": w.jobs_done,
                "jobs_failed": w.jobs_failed,
                "alive": w.heartbeat_at >= alive_since,
            })
        })
        .collect();
    let jobs: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({
                "id": j.id,
                "job_key": j.job_key,
                "kind": j.kind,
                "target": j.target,
                "state": j.state.as_str(),
                "attempts": j.attempts,
                "worker": j.worker,
                "error": j.error,
                "submitted_at": j.submitted_at,
                "started_at": j.started_at,
                "finished_at": j.finished_at,
                "run_id": j.run_id,
                "findings": j.findings,
            })
        })
        .collect();
    let window = THROUGHPUT_WINDOW.as_secs();
    Ok(Json(json!({
        "counts": {
            "queued": counts.queued,
            "running": counts.running,
            "done": counts.done,
            "failed": counts.failed,
        },
        "throughput": {
            "window_seconds": window,
            "jobs_done": counts.done_since,
            "jobs_per_minute": counts.done_since as f64 * 60.0 / window as f64,
            "findings": counts.findings_since,
        },
        "workers": workers,
        "jobs": jobs,
    })))
}

/// Whether a finding is a long-lived secret: a leaked secret (kind
/// `secret`) or a long-lived cloud credential of the inventory. Its triage
/// is judged at each point of the trend ([`present_at`]).
fn long_lived(p: &keytrail_store::Presence) -> bool {
    p.kind == "secret" || (p.kind == "inventory" && LONG_LIVED_KINDS.contains(&p.rule_id.as_str()))
}

/// Whether it counted at `at`: seen by then, open or acknowledged then (its
/// triage as of that time, from the audit trail: a false positive marked
/// today still counted last month), and not found fixed by then.
fn present_at(p: &keytrail_store::Presence, at: &str) -> bool {
    if p.first_seen.as_str() > at {
        return false;
    }
    if !matches!(p.status_at(at), Status::Open | Status::Acknowledged) {
        return false;
    }
    p.fixed_at.as_ref().is_none_or(|fixed| fixed.as_str() > at)
}

async fn trends(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    state.authorize(&headers, Role::Viewer).await?;
    no_params(q)?;
    let (runs, presence) = state
        .with_store(|s| Ok((s.runs()?, s.presence(&["secret", "inventory"])?)))
        .await?;
    let counted: Vec<_> = presence.iter().filter(|p| long_lived(p)).collect();
    // One point per recorded run (its end: what it recorded is in), the
    // newest TREND_POINTS, then now.
    let mut times: Vec<String> = runs.iter().map(|r| r.finished_at.clone()).collect();
    times.sort();
    times.dedup();
    let skip = times.len().saturating_sub(TREND_POINTS);
    let mut times: Vec<String> = times.into_iter().skip(skip).collect();
    times.push(keytrail_store::now());
    let points: Vec<Value> = times
        .iter()
        .map(|at| {
            let mut owners: std::collections::BTreeMap<String, u64> = Default::default();
            let mut environments: std::collections::BTreeMap<String, u64> = Default::default();
            let mut total = 0u64;
            for p in counted.iter().filter(|p| present_at(p, at)) {
                total += 1;
                let owner = p.owner.clone().unwrap_or_else(|| "UNOWNED".into());
                let env = p
                    .raw
                    .as_ref()
                    .and_then(|r| r["environment"].as_str())
                    .unwrap_or("unknown")
                    .to_string();
                *owners.entry(owner).or_default() += 1;
                *environments.entry(env).or_default() += 1;
            }
            json!({"at": at, "total": total, "by_owner": owners, "by_environment": environments})
        })
        .collect();
    Ok(Json(json!({
        "metric": "open_long_lived_secrets",
        "points": points,
    })))
}
