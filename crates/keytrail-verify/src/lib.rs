//! Verification and blast-radius analysis of found secrets: findings in,
//! the same findings out with `verification` (and, with `analyze`,
//! `blast_radius`) set.
//!
//! Each secret is asked about only at its own provider: HTTP verifiers are
//! data (`keytrail-rules/data/verifiers/*.yml`, see [`defs`]) whose host is
//! fixed by the definition; AWS keys are signed with SigV4 for STS
//! ([`aws`]); GCP service-account keys make a JWT grant ([`gcp`]). Endpoint
//! overrides ([`Endpoints`], `AWS_ENDPOINT_URL`) are the only way to send a
//! secret elsewhere, and they are explicit configuration.
//!
//! Safety: each distinct secret (per verifier) is checked once per run
//! however many findings and locations hold it; results may be kept between
//! runs in a cache file that stores keyed hashes and results, never
//! secrets ([`cache`]); requests per provider are limited in concurrency
//! and rate, `429 Retry-After` is honoured, every request has a timeout,
//! redirects are not followed; AWS canary keys are recognised offline and
//! never sent ([`canary`]).

pub mod aws;
pub mod cache;
pub mod canary;
pub mod db;
pub mod defs;
pub mod findings_file;
pub mod gcp;
pub mod http;
pub mod jsonpath;
mod limits;
pub mod time;

pub use http::Endpoints;

use defs::HttpVerifier;
use keytrail_types::{BlastRadius, Finding, Privilege, Verification, VerificationStatus};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Errors that stop verification before it starts (bad definitions, a bad
/// cache file, a malformed endpoint).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A verifier definition is malformed.
    #[error("verifier definitions: {0}")]
    Definitions(String),
    /// An endpoint override is malformed.
    #[error("endpoint: {0}")]
    Endpoint(String),
    /// The cache file cannot be read or written.
    #[error("verification cache {path}: {message}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Choices of a verification run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Also compute `blast_radius` for live secrets.
    pub analyze: bool,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Requests in flight at once, over all providers.
    pub concurrency: usize,
    /// Requests in flight at once to one provider.
    pub per_provider: usize,
    /// Requests per second to one provider, unless its definition says less.
    pub rate_per_second: f64,
    /// Longest `Retry-After` waited for before answering `unknown`.
    pub max_retry_after: Duration,
    /// Endpoint overrides (tests, private installations).
    pub endpoints: Endpoints,
    /// Cache file kept between runs (hashes and results only).
    pub cache: Option<PathBuf>,
    /// How long a cached result stays valid.
    pub cache_ttl: Duration,
    /// More AWS account ids to treat as canaries.
    pub canary_accounts: Vec<String>,
    /// Verifier ids not to run (reported `skipped`: a policy forbade it).
    pub disabled: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            analyze: false,
            timeout: Duration::from_secs(10),
            concurrency: 8,
            per_provider: 4,
            rate_per_second: 20.0,
            max_retry_after: Duration::from_secs(10),
            endpoints: Endpoints::new(),
            cache: None,
            cache_ttl: Duration::from_secs(24 * 3600),
            canary_accounts: Vec::new(),
            disabled: Vec::new(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Findings given.
    pub findings: usize,
    /// Distinct (verifier, secret) checks needed.
    pub distinct: usize,
    /// Checks answered from the cache file.
    pub from_cache: usize,
    /// HTTP requests sent.
    pub requests: u64,
    /// Findings per status.
    pub by_status: BTreeMap<VerificationStatus, usize>,
}

/// The result of one check, before it is stamped onto findings.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The verdict.
    pub status: VerificationStatus,
    /// Why.
    pub detail: Option<String>,
    /// Who the secret acts as.
    pub identity: Vec<(String, String)>,
    /// What it reaches (`analyze`).
    pub blast: Option<BlastRadius>,
    /// Which verifier answered.
    pub verifier: Option<String>,
    /// When it was asked.
    pub checked_at: Option<String>,
}

impl Outcome {
    pub(crate) fn new(status: VerificationStatus, detail: Option<String>) -> Outcome {
        Outcome {
            status,
            detail,
            identity: Vec::new(),
            blast: None,
            verifier: None,
            checked_at: None,
        }
    }

    pub(crate) fn unknown(detail: impl Into<String>) -> Outcome {
        Outcome::new(VerificationStatus::Unknown, Some(detail.into()))
    }

    fn skipped(detail: impl Into<String>) -> Outcome {
        Outcome::new(VerificationStatus::Skipped, Some(detail.into()))
    }
}

/// At most 200 characters of a provider's answer on one line.
pub(crate) fn excerpt(body: &str) -> String {
    let one: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Send through the client's per-provider limits (see [`limits`]).
pub(crate) fn send_with_retry(
    client: &http::Client,
    req: &http::Request,
    provider: &str,
) -> Result<http::Response, String> {
    client.send_limited(req, provider)
}

/// What checks a finding: the routing of one rule.
#[derive(Debug, Clone)]
enum Route {
    Http(usize),
    AwsPair,
    AwsKeyIdOnly,
    Gcp,
    Db(db::Kind),
    None(String),
}

/// The verification engine.
pub struct Verifier {
    http: Vec<HttpVerifier>,
    by_rule: HashMap<String, usize>,
    opts: Options,
    client: http::Client,
    aws: Result<aws::AwsEndpoints, String>,
    cache: Option<Mutex<cache::Cache>>,
}

/// One verifier as listed: (id, provider, rule ids, base URL).
pub type CatalogueEntry = (String, String, Vec<String>, Option<String>);

/// Every verifier.
pub fn catalogue() -> Result<Vec<CatalogueEntry>, Error> {
    let mut v: Vec<_> = defs::builtin()
        .map_err(Error::Definitions)?
        .into_iter()
        .map(|d| (d.id, d.provider, d.rules, d.base_url))
        .collect();
    v.push((
        "aws.sts".into(),
        "AWS".into(),
        vec![
            "aws.access_key.pair".into(),
            "aws.access_key.pair_reversed".into(),
            "aws.access_key_id".into(),
        ],
        Some("https://sts.amazonaws.com".into()),
    ));
    v.push((
        "gcp.jwt".into(),
        "Google Cloud".into(),
        vec![
            "gcp.service_account.key".into(),
            "gcp.service_account.key.sorted".into(),
        ],
        Some(gcp::TOKEN_BASE.into()),
    ));
    // Not a verifier of its own: where `gcp.jwt --analyze` tests the
    // account's permissions (listed so that its endpoint can be set).
    v.push((
        "gcp.crm".into(),
        "Google Cloud".into(),
        Vec::new(),
        Some(gcp::CRM_BASE.into()),
    ));
    for (rule, provider) in [
        ("database.postgres", "PostgreSQL"),
        ("database.mysql", "MySQL/MariaDB"),
        ("database.redis", "Redis"),
    ] {
        v.push((
            rule.into(),
            provider.into(),
            vec![rule.into()],
            Some("the host named in the connection string".into()),
        ));
    }
    v.sort();
    Ok(v)
}

impl Verifier {
    /// The builtin verifiers with `opts`.
    pub fn new(opts: Options) -> Result<Verifier, Error> {
        let defs = defs::builtin().map_err(Error::Definitions)?;
        Verifier::with_definitions(defs, opts)
    }

    /// Given verifiers (tests, custom definitions) with `opts`.
    pub fn with_definitions(defs: Vec<HttpVerifier>, opts: Options) -> Result<Verifier, Error> {
        let mut by_rule = HashMap::new();
        for (i, d) in defs.iter().enumerate() {
            defs::check(d).map_err(Error::Definitions)?;
            for r in &d.rules {
                if let Some(j) = by_rule.insert(r.clone(), i) {
                    return Err(Error::Definitions(format!(
                        "rule {r} has two verifiers: {} and {}",
                        defs[j].id, d.id
                    )));
                }
            }
        }
        let rates: HashMap<String, f64> = defs
            .iter()
            .map(|d| {
                (
                    d.id.clone(),
                    d.rate_per_second
                        .unwrap_or(opts.rate_per_second)
                        .min(opts.rate_per_second),
                )
            })
            .collect();
        let client = http::Client::new(opts.timeout).with_limits(limits::Limits::new(
            opts.per_provider.max(1),
            opts.rate_per_second,
            rates,
            opts.max_retry_after,
        ));
        let cache = match &opts.cache {
            Some(p) => Some(Mutex::new(cache::Cache::load(p, opts.cache_ttl).map_err(
                |message| Error::Cache {
                    path: p.clone(),
                    message,
                },
            )?)),
            None => None,
        };
        let aws = aws::AwsEndpoints::resolve(&opts.endpoints);
        Ok(Verifier {
            http: defs,
            by_rule,
            opts,
            client,
            aws,
            cache,
        })
    }

    fn route(&self, f: &Finding) -> Route {
        let id = f.rule_id.as_str();
        if let Some(&i) = self.by_rule.get(id) {
            return Route::Http(i);
        }
        match id {
            "aws.access_key.pair" | "aws.access_key.pair_reversed" => Route::AwsPair,
            "aws.access_key_id" => Route::AwsKeyIdOnly,
            "gcp.service_account.key" | "gcp.service_account.key.sorted" => Route::Gcp,
            _ => match db::kind_of_rule(id) {
                Some(kind) => Route::Db(kind),
                None => Route::None(format!("no verifier for rule {id}")),
            },
        }
    }

    fn verifier_id(&self, r: &Route) -> Option<&str> {
        match r {
            Route::Http(i) => Some(&self.http[*i].id),
            Route::AwsPair | Route::AwsKeyIdOnly => Some("aws.sts"),
            Route::Gcp => Some("gcp.jwt"),
            Route::Db(k) => Some(k.verifier_id()),
            Route::None(_) => None,
        }
    }

    /// Verify `findings` in place: set `verification` on each (and
    /// `blast_radius` on live ones with `analyze`). Never fails: a problem
    /// with one secret is that finding's `unknown`.
    pub fn verify(&self, findings: &mut [Finding]) -> Stats {
        let sent_before = self.client.sent();
        let mut stats = Stats {
            findings: findings.len(),
            ..Stats::default()
        };
        // One job per distinct (verifier, secret, context).
        let mut jobs: Vec<(String, usize, Route)> = Vec::new();
        let mut job_of: Vec<Option<String>> = Vec::with_capacity(findings.len());
        let mut seen: HashMap<String, ()> = HashMap::new();
        let mut immediate: HashMap<usize, Outcome> = HashMap::new();
        for (i, f) in findings.iter().enumerate() {
            let route = self.route(f);
            if let Some(o) = self.offline(f, &route) {
                immediate.insert(i, o);
                job_of.push(None);
                continue;
            }
            let key = job_key(self.verifier_id(&route).unwrap_or(""), f);
            if seen.insert(key.clone(), ()).is_none() {
                jobs.push((key.clone(), i, route));
            }
            job_of.push(Some(key));
        }
        stats.distinct = jobs.len();
        // Answer what the cache knows.
        let mut results: HashMap<String, Outcome> = HashMap::new();
        if let Some(c) = &self.cache {
            let c = c.lock().expect("cache lock");
            jobs.retain(|(key, _, _)| match c.get(key) {
                Some(o) => {
                    results.insert(key.clone(), o);
                    false
                }
                None => true,
            });
            stats.from_cache = results.len();
        }
        // Run the rest on a bounded pool.
        let next = Mutex::new(0usize);
        let done: Mutex<Vec<(String, Outcome)>> = Mutex::new(Vec::new());
        let workers = self.opts.concurrency.clamp(1, 64).min(jobs.len().max(1));
        let fs: &[Finding] = findings;
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let j = {
                            let mut n = next.lock().expect("queue lock");
                            let j = *n;
                            *n += 1;
                            j
                        };
                        let Some((key, fi, route)) = jobs.get(j) else {
                            break;
                        };
                        let mut o = self.check(&fs[*fi], route);
                        o.verifier = self.verifier_id(route).map(str::to_string);
                        o.checked_at = Some(time::rfc3339(time::now_unix()));
                        done.lock().expect("results lock").push((key.clone(), o));
                    }
                });
            }
        });
        let done = done.into_inner().expect("results lock");
        if let Some(c) = &self.cache {
            let mut c = c.lock().expect("cache lock");
            for (k, o) in &done {
                c.put(k, o);
            }
        }
        results.extend(done);
        for (i, f) in findings.iter_mut().enumerate() {
            let o = match &job_of[i] {
                Some(k) => results.get(k).cloned(),
                None => immediate.remove(&i),
            };
            let Some(o) = o else { continue };
            *stats.by_status.entry(o.status).or_default() += 1;
            f.verification = Some(Verification {
                status: o.status,
                checked_at: o
                    .checked_at
                    .clone()
                    .unwrap_or_else(|| time::rfc3339(time::now_unix())),
                verifier: o.verifier.clone(),
                detail: o.detail.clone(),
                identity: o.identity.clone(),
            });
            f.blast_radius = if self.opts.analyze && o.status == VerificationStatus::Live {
                Some(o.blast.clone().unwrap_or_else(|| BlastRadius {
                    privilege: Privilege::Unknown,
                    scopes: Vec::new(),
                    resources: Vec::new(),
                    evidence: Vec::new(),
                    unknowns: vec![format!(
                        "no blast-radius analysis for {}",
                        o.verifier.as_deref().unwrap_or("this verifier")
                    )],
                }))
            } else {
                None
            };
        }
        stats.requests = self.client.sent() - sent_before;
        stats
    }

    /// Save the cache file, if one is used.
    pub fn save_cache(&self) -> Result<(), Error> {
        if let (Some(c), Some(p)) = (&self.cache, &self.opts.cache) {
            c.lock()
                .expect("cache lock")
                .save(p)
                .map_err(|message| Error::Cache {
                    path: p.clone(),
                    message,
                })?;
        }
        Ok(())
    }

    /// Outcomes decided without the network: canaries, no verifier, a
    /// disabled verifier, a key id without its secret.
    fn offline(&self, f: &Finding, route: &Route) -> Option<Outcome> {
        let aws_id = match route {
            Route::AwsPair => context(f, "id"),
            Route::AwsKeyIdOnly => Some(f.secret.expose().as_str()),
            _ => None,
        };
        if let Some(key_id) = aws_id
            && let Some(account) = canary::aws_account_id(key_id)
            && let Some(vendor) = canary::canary_vendor(&account, &self.opts.canary_accounts)
        {
            let mut o = Outcome::new(
                VerificationStatus::Canary,
                Some(format!(
                    "AWS account {account} (decoded offline from the key id) belongs to {vendor}: not sent anywhere; whoever planted it is alerted when it is used"
                )),
            );
            o.identity = vec![("account".into(), account)];
            o.verifier = Some("aws.sts".into());
            return Some(o);
        }
        if let Some(id) = self.verifier_id(route)
            && self.opts.disabled.iter().any(|d| d == id)
        {
            let mut o = Outcome::skipped(format!("verifier {id} is disabled by configuration"));
            o.verifier = Some(id.to_string());
            return Some(o);
        }
        match route {
            Route::None(why) => Some(Outcome::skipped(why.clone())),
            Route::AwsKeyIdOnly => {
                let mut o =
                    Outcome::skipped("an access key id without its secret cannot be verified");
                if let Some(a) = canary::aws_account_id(f.secret.expose()) {
                    o.identity = vec![("account".into(), a)];
                }
                o.verifier = Some("aws.sts".into());
                Some(o)
            }
            _ => None,
        }
    }

    fn check(&self, f: &Finding, route: &Route) -> Outcome {
        let secret = f.secret.expose().as_str();
        let mut o = match route {
            Route::Http(i) => self.run_http(&self.http[*i], secret, &f.context),
            Route::AwsPair => match (&self.aws, context(f, "id")) {
                (Ok(ep), Some(id)) => aws::verify(&self.client, ep, id, secret, self.opts.analyze),
                (Err(e), _) => Outcome::unknown(format!("AWS endpoint: {e}")),
                (_, None) => Outcome::skipped("the finding has no access key id"),
            },
            Route::Gcp => {
                let base = self
                    .opts
                    .endpoints
                    .resolve("gcp.jwt", Some(gcp::TOKEN_BASE))
                    .unwrap_or_default();
                let crm = self
                    .opts
                    .endpoints
                    .resolve("gcp.crm", Some(gcp::CRM_BASE))
                    .unwrap_or_default();
                gcp::verify(
                    &self.client,
                    &base,
                    &crm,
                    secret,
                    &f.context,
                    self.opts.analyze,
                )
            }
            Route::Db(kind) => match context(f, "host") {
                Some(host) => db::verify(
                    *kind,
                    context(f, "scheme").unwrap_or(""),
                    context(f, "user").unwrap_or(""),
                    secret,
                    host,
                    self.opts.timeout.min(std::time::Duration::from_secs(5)),
                ),
                None => Outcome::skipped("the connection string's host was not found"),
            },
            Route::AwsKeyIdOnly | Route::None(_) => Outcome::skipped("no verifier"),
        };
        // Whatever a provider answered, the secret never goes into output.
        if let Some(d) = &mut o.detail
            && secret.len() >= 4
            && d.contains(secret)
        {
            *d = d.replace(secret, &keytrail_types::redact(secret.as_bytes()));
        }
        for (_, v) in &mut o.identity {
            if secret.len() >= 4 && v.contains(secret) {
                *v = v.replace(secret, &keytrail_types::redact(secret.as_bytes()));
            }
        }
        o
    }

    fn build(
        &self,
        def: &HttpVerifier,
        base: &str,
        path: &str,
        secret: &str,
        ctx: &[(String, String)],
        with_body: bool,
    ) -> Result<http::Request, String> {
        use base64::Engine as _;
        let vars = http::Vars {
            secret,
            context: ctx,
        };
        let mut headers = Vec::new();
        for (k, v) in &def.request.headers {
            headers.push((k.clone(), http::expand(v, &vars, http::Escape::Raw)?));
        }
        if let Some(b) = &def.request.basic_auth {
            let u = http::expand(&b.username, &vars, http::Escape::Raw)?;
            let p = http::expand(&b.password, &vars, http::Escape::Raw)?;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            headers.push(("Authorization".into(), format!("Basic {token}")));
        }
        let body = match (&def.request.body, with_body) {
            (Some(b), true) => Some(http::expand(b, &vars, http::Escape::Raw)?.into_bytes()),
            _ => None,
        };
        let path = http::expand(path, &vars, http::Escape::Url)?;
        defs::check_path(&path)?;
        Ok(http::Request {
            method: if with_body {
                def.request.method.to_ascii_uppercase()
            } else {
                "GET".into()
            },
            base: base.to_string(),
            path,
            headers,
            body,
        })
    }

    fn run_http(&self, def: &HttpVerifier, secret: &str, ctx: &[(String, String)]) -> Outcome {
        let Some(base) = self
            .opts
            .endpoints
            .resolve(&def.id, def.base_url.as_deref())
        else {
            return Outcome::skipped(format!(
                "{} is self-hosted: set {} to its URL to verify",
                def.provider,
                http::env_name(&def.id)
            ));
        };
        let req = match self.build(def, &base, &def.request.path, secret, ctx, true) {
            Ok(r) => r,
            Err(e) => return Outcome::skipped(format!("cannot build the request: {e}")),
        };
        let r = match self.client.send_limited(&req, &def.id) {
            Ok(r) => r,
            Err(e) => return Outcome::unknown(e),
        };
        let json = r.json();
        if def.live.matches(r.status, &r.body, json.as_ref()) {
            let mut o = Outcome::new(VerificationStatus::Live, Some(format!("HTTP {}", r.status)));
            for (name, path) in &def.identity {
                let vals = match path.strip_prefix("header:") {
                    Some(h) => r.header(h).map(|v| vec![v.to_string()]).unwrap_or_default(),
                    None => json
                        .as_ref()
                        .map(|j| jsonpath::texts(j, path))
                        .unwrap_or_default(),
                };
                if !vals.is_empty() {
                    o.identity.push((name.clone(), vals.join(",")));
                }
            }
            if self.opts.analyze {
                o.blast = Some(self.analyze_http(
                    def,
                    &base,
                    secret,
                    ctx,
                    &r,
                    json.as_ref(),
                    &o.identity,
                ));
            }
            return o;
        }
        if def.invalid.matches(r.status, &r.body, json.as_ref()) {
            return Outcome::new(
                VerificationStatus::Invalid,
                Some(format!("HTTP {}: {}", r.status, excerpt(&r.body))),
            );
        }
        if r.status == 429 {
            return Outcome::unknown(format!(
                "rate limited (HTTP 429{})",
                r.header("retry-after")
                    .map(|v| format!(", retry after {v} s"))
                    .unwrap_or_default()
            ));
        }
        if (300..400).contains(&r.status) {
            return Outcome::unknown(format!("HTTP {}: redirected (not followed)", r.status));
        }
        Outcome::unknown(format!(
            "unexpected answer: HTTP {}: {}",
            r.status,
            excerpt(&r.body)
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn analyze_http(
        &self,
        def: &HttpVerifier,
        base: &str,
        secret: &str,
        ctx: &[(String, String)],
        r: &http::Response,
        json: Option<&serde_json::Value>,
        identity: &[(String, String)],
    ) -> BlastRadius {
        let mut b = BlastRadius {
            privilege: Privilege::Unknown,
            scopes: Vec::new(),
            resources: Vec::new(),
            evidence: Vec::new(),
            unknowns: Vec::new(),
        };
        let Some(a) = &def.analyze else {
            b.unknowns
                .push(format!("{} reports no scopes keytrail reads", def.provider));
            return b;
        };
        let mut scopes_read = false;
        if let Some(h) = &a.scopes_header {
            match r.header(h) {
                Some(v) => {
                    scopes_read = true;
                    b.scopes.extend(split_scopes(v));
                }
                None => b.unknowns.push(format!("no {h} header in the answer")),
            }
        }
        if let (Some(p), Some(j)) = (&a.scopes_json, json) {
            let got = jsonpath::texts(j, p);
            if !got.is_empty() {
                scopes_read = true;
            }
            for s in got {
                b.scopes.extend(split_scopes(&s));
            }
        }
        if let Some(j) = json {
            for (path, prefix) in &a.resources {
                for v in jsonpath::texts(j, path) {
                    b.resources.push(format!("{prefix}{v}"));
                }
            }
        }
        for (field, prefix) in &a.identity_resources {
            for (k, v) in identity {
                if k == field {
                    b.resources.push(format!("{prefix}{v}"));
                }
            }
        }
        for extra in &a.requests {
            let req = match self.build(def, base, &extra.path, secret, ctx, false) {
                Ok(r) => r,
                Err(e) => {
                    b.unknowns.push(format!("{}: {e}", extra.what));
                    continue;
                }
            };
            match self.client.send_limited(&req, &def.id) {
                Ok(resp) if resp.status == 200 => {
                    if let Some(s) = &extra.scope_if_ok {
                        scopes_read = true;
                        b.scopes.push(s.clone());
                    }
                    let Some(j) = resp.json() else {
                        if extra.scope_if_ok.is_some() {
                            continue;
                        }
                        b.unknowns
                            .push(format!("{}: answer is not JSON", extra.what));
                        continue;
                    };
                    for (path, prefix) in &extra.resources {
                        for v in jsonpath::texts(&j, path) {
                            b.resources.push(format!("{prefix}{v}"));
                        }
                    }
                    if let Some(p) = &extra.scopes {
                        let got = jsonpath::texts(&j, p);
                        if !got.is_empty() {
                            scopes_read = true;
                        }
                        for s in got {
                            b.scopes.extend(split_scopes(&s));
                        }
                    }
                }
                Ok(resp) => b
                    .unknowns
                    .push(format!("{}: HTTP {} (not listed)", extra.what, resp.status)),
                Err(e) => b.unknowns.push(format!("{}: {e}", extra.what)),
            }
        }
        b.scopes.sort();
        b.scopes.dedup();
        b.resources.sort();
        b.resources.dedup();
        for rule in &a.privilege {
            let hit = rule.always
                || (rule.any_scopes && scopes_read && !b.scopes.is_empty())
                || rule
                    .scopes_any
                    .iter()
                    .any(|want| b.scopes.iter().any(|s| scope_matches(want, s)))
                || rule
                    .secret_prefix
                    .iter()
                    .any(|p| secret.starts_with(p.as_str()))
                || (!rule.identity.is_empty()
                    && rule
                        .identity
                        .iter()
                        .all(|(k, v)| identity.iter().any(|(ik, iv)| ik == k && iv == v)));
            if hit {
                b.privilege = rule.privilege;
                b.evidence.push(rule.because.clone());
                break;
            }
        }
        if b.privilege == Privilege::Unknown && !scopes_read {
            b.unknowns.push(format!(
                "{} did not report the secret's scopes",
                def.provider
            ));
        }
        b.unknowns.extend(a.unknowns.iter().cloned());
        b
    }
}

fn split_scopes(v: &str) -> Vec<String> {
    v.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn scope_matches(want: &str, got: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => want == got,
    }
}

fn context<'a>(f: &'a Finding, name: &str) -> Option<&'a str> {
    f.context
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The identity of a check: SHA-256 over the verifier, the secret and the
/// context (an AWS secret is checked with its key id). Kept in memory; the
/// cache file stores it only keyed with a per-file salt.
fn job_key(verifier: &str, f: &Finding) -> String {
    let mut h = Sha256::new();
    h.update(b"keytrail-verify/v1\0");
    h.update(verifier.as_bytes());
    h.update([0]);
    h.update(f.secret.expose().as_bytes());
    let mut ctx: Vec<_> = f.context.iter().collect();
    ctx.sort();
    for (k, v) in ctx {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([b'=']);
        h.update(v.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
