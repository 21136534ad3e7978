//! One exposure record per leaked credential: the join of the leak, its identity
//! and reach, its use after the leak, the sessions it opened and the alerts raised,
//! with a verdict and the action to take. Records are ordered by risk.

use std::collections::BTreeMap;

use keytrail_detect::alert::Alert;
use keytrail_detect::time::format_rfc3339_ms;
use serde::Serialize;

use crate::identity::{Directory, Reach, account_of_key};
use crate::leaks::{CredentialKind, Leak, Place};
use crate::usage::{Counted, Coverage, KeyChange, Session, Tracked, Usage};

/// The verdict on one leaked credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Verdict {
    /// Used after the leak from an IP, network, country or client it never used
    /// before.
    #[serde(rename = "used from new sources — treat as compromised")]
    Compromised,
    /// Used after the leak, only from sources it used before.
    #[serde(rename = "used only from known sources")]
    KnownSources,
    /// The leak has no date: nothing can be said about use after it.
    #[serde(rename = "leak time unknown")]
    LeakTimeUnknown,
    /// No use in the logs read since the leak.
    #[serde(rename = "not used since the leak")]
    NotUsed,
    /// The key was inactive or deleted (before the leak, or since).
    #[serde(rename = "inactive/deleted")]
    InactiveOrDeleted,
    /// A credential of a provider whose audit log was not read.
    #[serde(rename = "no audit log for this credential")]
    NoAuditLog,
}

impl Verdict {
    /// The text used in every format.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compromised => "used from new sources — treat as compromised",
            Verdict::KnownSources => "used only from known sources",
            Verdict::LeakTimeUnknown => "leak time unknown",
            Verdict::NotUsed => "not used since the leak",
            Verdict::InactiveOrDeleted => "inactive/deleted",
            Verdict::NoAuditLog => "no audit log for this credential",
        }
    }
}

/// What to do.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// `revoke_now`, `rotate`, `remove_from_source`.
    pub kind: String,
    /// One line.
    pub summary: String,
    /// Commands to run, in order.
    pub commands: Vec<String>,
    /// Where to remove the secret from (commits, images, files).
    pub clean: Vec<String>,
}

/// The identity part of a record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdentityOut {
    /// ARN of the identity (IAM user), when known.
    pub arn: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Account id.
    pub account_id: Option<String>,
    /// Where the identity came from: `snapshot`, `live` (collected for the run
    /// with `--live`), `cloudtrail`, `key id` (the account only, decoded from the
    /// key id) or `none`.
    pub from: String,
    /// Owner from the owners file.
    pub owner: Option<String>,
    /// Purpose.
    pub purpose: Option<String>,
    /// Environment.
    pub environment: Option<String>,
}

/// A derived session in the output.
#[derive(Debug, Clone, Serialize)]
pub struct SessionOut {
    /// Temporary access key id.
    pub access_key_id: String,
    /// `AssumeRole`, `GetSessionToken` or `GetFederationToken`.
    pub via: String,
    /// The key that opened it.
    pub parent: String,
    /// Hops from the leaked key.
    pub depth: u8,
    /// Role assumed.
    pub role_arn: Option<String>,
    /// Session or federated user name.
    pub session_name: Option<String>,
    /// Federated user ARN.
    pub federated_user: Option<String>,
    /// When it was issued.
    pub issued_at: String,
    /// Source IP of the issuing call.
    pub issued_from: String,
    /// Calls made with it.
    pub uses: u64,
    /// First and last call.
    pub first_use: Option<String>,
    /// Last call.
    pub last_use: Option<String>,
    /// `service:EventName` → calls.
    pub apis: BTreeMap<String, u64>,
    /// Resources named in its calls.
    pub resources: Vec<String>,
    /// Source IPs.
    pub source_ips: Vec<String>,
    /// Calls denied.
    pub denied: u64,
}

/// Sources in the output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourcesOut {
    /// IP addresses.
    pub ips: Vec<String>,
    /// Networks (`AS<n> <org>`, or a /24 prefix without IP intelligence).
    pub networks: Vec<String>,
    /// Countries.
    pub countries: Vec<String>,
    /// Clients (user-agent products).
    pub clients: Vec<String>,
}

impl SourcesOut {
    fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.networks.is_empty()
            && self.countries.is_empty()
            && self.clients.is_empty()
    }
}

/// An alert in the output (a subset of the detect alert).
#[derive(Debug, Clone, Serialize)]
pub struct AlertOut {
    /// Alert id.
    pub id: String,
    /// Rule id.
    pub rule_id: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: String,
    /// Time of the first evidence.
    pub time: String,
    /// Access key of the first evidence.
    pub access_key_id: Option<String>,
    /// Principal.
    pub principal: String,
}

/// One leaked credential, joined.
#[derive(Debug, Clone, Serialize)]
pub struct ExposureRecord {
    /// The access key id (AWS), else the finding fingerprint.
    pub access_key_id: String,
    /// `aws_access_key`, `aws_session_key`, `github_pat`, `other`.
    pub credential: CredentialKind,
    /// Rules that found it.
    pub rule_ids: Vec<String>,
    /// Redacted secret.
    pub secret_redacted: String,
    /// Earliest evidence of exposure (RFC 3339), or null.
    pub leaked_at: Option<String>,
    /// What `leaked_at` comes from.
    pub leaked_at_from: Option<String>,
    /// Where it leaked.
    pub leaked_where: Vec<Place>,
    /// Who it belongs to.
    pub identity: IdentityOut,
    /// Whether the key can still be used: `active` now per the snapshot (and no
    /// later deletion or deactivation in CloudTrail).
    pub live: bool,
    /// `active`, `inactive`, `deleted` or `unknown`.
    pub status: String,
    /// Deletions and status changes of the key seen in CloudTrail.
    pub status_changes: Vec<KeyChange>,
    /// Privilege class, most severe first.
    pub privilege: Vec<String>,
    /// What it reaches.
    pub reach: Reach,
    /// Whether it was used at or after `leaked_at` (null when the leak time is unknown
    /// or no audit log applies).
    pub used_after_leak: Option<bool>,
    /// Calls at or after the leak.
    pub uses_after_leak: u64,
    /// Calls before the leak (its baseline).
    pub uses_before_leak: u64,
    /// First call at or after the leak.
    pub first_use_after_leak: Option<String>,
    /// Last call seen.
    pub last_use: Option<String>,
    /// Sources after the leak that the key never used before it.
    pub new_sources: SourcesOut,
    /// Sources after the leak that it had used before (known).
    pub known_sources: SourcesOut,
    /// `service:EventName` → calls after the leak (the key itself).
    pub apis_after_leak: BTreeMap<String, u64>,
    /// Resources named in its calls after the leak.
    pub resources_after_leak: Vec<String>,
    /// Calls after the leak that were denied.
    pub denied_after_leak: u64,
    /// Sessions opened with the key after the leak (transitively).
    pub derived_sessions: Vec<SessionOut>,
    /// Sessions not followed (limits).
    pub derived_sessions_not_followed: u64,
    /// `keytrail detect` alerts on the identity or its sessions after the leak.
    pub alerts: Vec<AlertOut>,
    /// The verdict.
    pub verdict: Verdict,
    /// What to do.
    pub action: Action,
    /// Why something is unknown or uncertain.
    pub notes: Vec<String>,
    /// Rank for ordering (not serialised).
    #[serde(skip)]
    pub risk: (u8, u8, u64),
}

/// Picks one list of a [`SourcesOut`].
type Field = fn(&mut SourcesOut) -> &mut Vec<String>;

fn list(c: &Counted) -> Vec<String> {
    c.values.keys().cloned().collect()
}

fn split(u: &Usage, baseline: bool) -> (SourcesOut, SourcesOut) {
    let mut new = SourcesOut::default();
    let mut known = SourcesOut::default();
    let pairs: [(&Counted, &Counted, Field); 4] = [
        (&u.after.ips, &u.before.ips, |s| &mut s.ips),
        (&u.after.networks, &u.before.networks, |s| &mut s.networks),
        (&u.after.countries, &u.before.countries, |s| {
            &mut s.countries
        }),
        (&u.after.clients, &u.before.clients, |s| &mut s.clients),
    ];
    for (after, before, field) in pairs {
        for v in after.values.keys() {
            if baseline && !before.has(v) {
                field(&mut new).push(v.clone());
            } else {
                field(&mut known).push(v.clone());
            }
        }
    }
    (new, known)
}

fn session_out(s: &Session) -> SessionOut {
    SessionOut {
        access_key_id: s.key.clone(),
        via: s.via.clone(),
        parent: s.parent.clone(),
        depth: s.depth,
        role_arn: s.role_arn.clone(),
        session_name: s.session_name.clone(),
        federated_user: s.federated_user.clone(),
        issued_at: format_rfc3339_ms(s.issued_ms),
        issued_from: s.issued_from.clone(),
        uses: s.usage.uses_after,
        first_use: s.usage.first_ms.map(format_rfc3339_ms),
        last_use: s.usage.last_ms.map(format_rfc3339_ms),
        apis: s.usage.apis_after.values.clone(),
        resources: list(&s.usage.resources_after),
        source_ips: list(&s.usage.after.ips),
        denied: s.usage.denied_after,
    }
}

fn privilege_rank(p: &[String]) -> u8 {
    match p.first().map(String::as_str) {
        Some("admin") => 6,
        Some("privilege-escalation") => 5,
        Some("data-access") => 4,
        Some("write") => 3,
        Some("unknown") => 2,
        Some("read-only") => 1,
        _ => 0,
    }
}

/// What the records of one run share besides the join itself.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    /// What the logs covered.
    pub coverage: &'a Coverage,
    /// Whether CloudTrail was read at all.
    pub logs_read: bool,
    /// Whether IP intelligence resolved networks.
    pub has_intel: bool,
    /// The run's time (RFC 3339): the cut-off of session revocation.
    pub as_of: &'a str,
}

/// Builds the records: one per leak, ordered by risk (verdict, then privilege,
/// then uses after the leak, then key id).
pub fn build(
    leaks: &[Leak],
    dir: &Directory,
    tracked: &[Tracked],
    alerts: &[(usize, Alert)],
    facts: RunFacts<'_>,
) -> Vec<ExposureRecord> {
    let mut out: Vec<ExposureRecord> = leaks
        .iter()
        .map(|leak| {
            let ti = tracked.iter().position(|t| t.key == leak.credential_id);
            one(
                leak,
                dir,
                ti.map(|i| &tracked[i]),
                ti.map(|i| {
                    alerts
                        .iter()
                        .filter(|(j, _)| *j == i)
                        .map(|(_, a)| a)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
                facts,
            )
        })
        .collect();
    out.sort_by(|a, b| {
        (
            a.verdict,
            std::cmp::Reverse(a.risk.1),
            std::cmp::Reverse(a.risk.2),
            &a.access_key_id,
        )
            .cmp(&(
                b.verdict,
                std::cmp::Reverse(b.risk.1),
                std::cmp::Reverse(b.risk.2),
                &b.access_key_id,
            ))
    });
    out
}

fn one(
    leak: &Leak,
    dir: &Directory,
    tr: Option<&Tracked>,
    alerts: Vec<&Alert>,
    facts: RunFacts<'_>,
) -> ExposureRecord {
    let RunFacts {
        coverage,
        logs_read,
        has_intel,
        as_of,
    } = facts;
    let mut notes = leak.notes.clone();
    let aws = matches!(
        leak.kind,
        CredentialKind::AwsAccessKey | CredentialKind::AwsSessionKey
    );
    let gcp = leak.kind == CredentialKind::GcpServiceAccountKey;
    let azure = leak.kind == CredentialKind::AzureClientSecret;
    // The audit log that applies to the credential, and whether any of it was
    // read: CloudTrail for AWS keys, Google Cloud's audit logs for its keys,
    // Entra ID's sign-ins for client secrets.
    let (log_name, cloud) = if gcp {
        ("the Google Cloud audit logs", Some("gcp"))
    } else if azure {
        ("the Entra ID sign-in logs", Some("entra"))
    } else {
        ("CloudTrail", None)
    };
    let cloud_span = cloud.and_then(|c| coverage.span_by_cloud_ms.get(c).copied());
    let logs_read = match cloud {
        Some(_) => logs_read && cloud_span.is_some(),
        None => logs_read,
    };
    let span_ms = if cloud.is_some() {
        cloud_span
    } else {
        coverage.span_ms
    };
    // A client secret is only seen in the sign-ins by its key id, which the
    // snapshot gives.
    let resolved = !azure || dir.lookup(&leak.credential_id).is_some();
    let aws_or_gcp = aws || gcp || (azure && resolved);
    let key = leak.credential_id.as_str();
    let empty = Usage::default();
    let usage = tr.map_or(&empty, |t| &t.usage);
    let at = leak.leaked_at_ms;
    if at.is_none() {
        notes.push(
            "no location of this credential has a date (plain files and stdin carry none): pass --leaked-at TIME or --leaked-at KEY=TIME; uses are counted but not split at the leak".into(),
        );
    }

    // Identity.
    let mut identity = IdentityOut {
        from: "none".into(),
        ..IdentityOut::default()
    };
    let mut status = "unknown".to_string();
    let mut privilege: Vec<String> = Vec::new();
    let mut reach = Reach::default();
    if aws {
        if let Some(k) = dir.lookup(key) {
            identity = IdentityOut {
                arn: Some(k.arn.clone()),
                name: Some(k.name.clone()),
                account_id: Some(k.account_id.clone()),
                from: if dir.source.is_empty() {
                    "snapshot"
                } else {
                    dir.source
                }
                .into(),
                owner: Some(k.owner.clone()),
                purpose: k.purpose.clone(),
                environment: k.environment.clone(),
            };
            status = k.key_status.clone();
            privilege = k.privilege.clone();
            reach = k.reach.clone();
        } else if let Some(arn) = &usage.arn {
            identity.arn = Some(arn.clone());
            identity.name = arn.rsplit('/').next().map(str::to_string);
            identity.account_id = usage.account_id.clone();
            identity.from = "cloudtrail".into();
            let in_snapshot_account = usage
                .account_id
                .as_ref()
                .is_some_and(|a| dir.accounts.contains(a));
            if in_snapshot_account && dir.has_key_lists {
                status = "deleted".into();
                notes.push(format!(
                    "no IAM user of account {} lists this key in the snapshot: it was deleted (CloudTrail names {arn})",
                    usage.account_id.as_deref().unwrap_or("?")
                ));
            } else if !dir.accounts.is_empty() {
                notes.push(format!(
                    "the key belongs to account {}, which the snapshot does not describe (snapshot: {}): privilege and reach unknown",
                    usage.account_id.as_deref().unwrap_or("?"),
                    dir.accounts.join(", ")
                ));
            } else {
                notes.push(
                    "no snapshot: identity from CloudTrail only, privilege and reach unknown"
                        .into(),
                );
            }
        } else {
            let decoded = if key.starts_with("AKIA") || key.starts_with("ASIA") {
                account_of_key(key)
            } else {
                None
            };
            match decoded {
                Some(acct) if !dir.accounts.is_empty() && !dir.accounts.contains(&acct) => {
                    identity.account_id = Some(acct.clone());
                    identity.from = "key id".into();
                    notes.push(format!(
                        "the key id names account {acct}, not the snapshot's ({}): a key of another account, its identity cannot be resolved here",
                        dir.accounts.join(", ")
                    ));
                }
                _ if dir.has_key_lists => {
                    status = "deleted".into();
                    notes.push(
                        "no IAM user in the snapshot has this key and CloudTrail never shows it: it was deleted (or belongs to an account the snapshot does not cover)".into(),
                    );
                }
                _ => notes.push(
                    "no snapshot lists access keys and CloudTrail never shows this key: its identity is unknown".into(),
                ),
            }
        }
    } else if gcp {
        (identity, status, privilege, reach) = gcp_identity(leak, dir, usage, &mut notes);
    } else if azure {
        (identity, status, privilege, reach) = azure_identity(leak, dir, &mut notes);
    }
    // CloudTrail's word on deletion or deactivation wins over an older snapshot.
    let changes: Vec<KeyChange> = tr.map(|t| t.changes.clone()).unwrap_or_default();
    if let Some(last) = changes.last() {
        status = last.status.clone();
    }
    let live = status == "active";
    let deleted_before_leak = match (changes.iter().find(|c| c.status != "active"), at) {
        (Some(c), Some(a)) => c.time_ms <= a,
        _ => false,
    };
    if deleted_before_leak {
        notes.push(format!(
            "the key was {} at {} by {}, before it leaked",
            changes[0].status, changes[0].time, changes[0].by
        ));
    }

    // Coverage of the logs over [leaked_at, end].
    if aws_or_gcp && logs_read {
        match (span_ms, at) {
            (None, _) => notes.push(format!("{log_name} read hold no events")),
            (Some((first, last)), Some(a)) => {
                if a < first {
                    notes.push(format!(
                        "{log_name} read start at {}, after the leak ({}): uses in between are unknown",
                        format_rfc3339_ms(first),
                        format_rfc3339_ms(a)
                    ));
                }
                if a > last {
                    notes.push(format!(
                        "{log_name} read end at {}, before the leak: nothing after the leak was read",
                        format_rfc3339_ms(last)
                    ));
                }
                for (g0, g1) in &coverage.gaps_ms {
                    if *g1 > a && *g0 >= first && *g1 <= last {
                        notes.push(format!(
                            "no CloudTrail events from {} to {} (a gap in the logs): uses then are unknown",
                            format_rfc3339_ms(*g0),
                            format_rfc3339_ms(*g1)
                        ));
                    }
                }
            }
            _ => {}
        }
        if !has_intel && usage.uses_after > 0 {
            notes.push("no IP intelligence: networks are /24 prefixes and countries are not known (keytrail intel update, or --ipintel)".into());
        }
    }
    if aws && !logs_read {
        notes.push("no CloudTrail given (--cloudtrail): use after the leak is unknown".into());
    }
    if gcp && !logs_read {
        notes.push(
            "no Google Cloud audit log among the logs read (--logs): use after the leak is unknown"
                .into(),
        );
    }
    if azure && resolved && !logs_read {
        notes.push(
            "no Entra ID sign-in log among the logs read (--logs): use after the leak is unknown"
                .into(),
        );
    }

    let baseline = at.is_some();
    let (mut new_sources, known_sources) = split(usage, baseline);
    // Sessions opened after the leak: their sources count as the key's, judged
    // against the key's own baseline.
    if baseline && let Some(t) = tr {
        for s in &t.sessions {
            let n = split_against(&s.usage, usage);
            for (dst, src) in [
                (&mut new_sources.ips, n.ips),
                (&mut new_sources.networks, n.networks),
                (&mut new_sources.countries, n.countries),
                (&mut new_sources.clients, n.clients),
            ] {
                for v in src {
                    if !dst.contains(&v) {
                        dst.push(v);
                    }
                }
            }
        }
    }
    let sessions: Vec<SessionOut> = tr
        .map(|t| t.sessions.iter().map(session_out).collect())
        .unwrap_or_default();
    let used_after = if !aws_or_gcp || !logs_read || at.is_none() {
        None
    } else {
        Some(usage.uses_after > 0 || sessions.iter().any(|s| s.uses > 0))
    };
    let mut alert_out: Vec<AlertOut> = alerts
        .iter()
        .filter(|a| at.is_none_or(|t| a.time_ms >= t))
        .map(|a| AlertOut {
            id: a.id.clone(),
            rule_id: a.rule_id.clone(),
            title: a.title.clone(),
            severity: a.severity.as_str().to_string(),
            time: a.time.clone(),
            access_key_id: a.access_key_id.clone(),
            principal: a.principal.clone(),
        })
        .collect();
    alert_out.sort_by(|a, b| (&a.time, &a.id).cmp(&(&b.time, &b.id)));
    alert_out.dedup_by(|a, b| a.id == b.id);

    let verdict = if azure && !resolved && status == "deleted" {
        Verdict::InactiveOrDeleted
    } else if !aws_or_gcp || ((gcp || azure) && !logs_read) {
        Verdict::NoAuditLog
    } else if at.is_none() {
        Verdict::LeakTimeUnknown
    } else if used_after == Some(true) {
        if new_sources.is_empty() {
            Verdict::KnownSources
        } else {
            Verdict::Compromised
        }
    } else if deleted_before_leak || status == "deleted" || status == "inactive" {
        Verdict::InactiveOrDeleted
    } else {
        Verdict::NotUsed
    };
    let action = action(leak, verdict, &status, &sessions, as_of, &identity);
    let risk = (
        0,
        privilege_rank(&privilege),
        usage.uses_after + sessions.iter().map(|s| s.uses).sum::<u64>(),
    );
    ExposureRecord {
        access_key_id: leak.credential_id.clone(),
        credential: leak.kind,
        rule_ids: leak.rule_ids.clone(),
        secret_redacted: leak.secret_redacted.clone(),
        leaked_at: at.map(format_rfc3339_ms),
        leaked_at_from: leak.leaked_at_from.clone(),
        leaked_where: leak.leaked_where.clone(),
        identity,
        live,
        status,
        status_changes: changes,
        privilege,
        reach,
        used_after_leak: used_after,
        uses_after_leak: if at.is_some() { usage.uses_after } else { 0 },
        uses_before_leak: usage.uses_before,
        first_use_after_leak: at.and(usage.first_after_ms).map(format_rfc3339_ms),
        last_use: usage.last_ms.map(format_rfc3339_ms),
        new_sources,
        known_sources,
        apis_after_leak: if at.is_some() {
            usage.apis_after.values.clone()
        } else {
            BTreeMap::new()
        },
        resources_after_leak: if at.is_some() {
            list(&usage.resources_after)
        } else {
            Vec::new()
        },
        denied_after_leak: if at.is_some() { usage.denied_after } else { 0 },
        derived_sessions: sessions,
        derived_sessions_not_followed: tr.map_or(0, |t| t.sessions_not_followed),
        alerts: alert_out,
        verdict,
        action,
        notes,
        risk,
    }
}

/// Sources of `s` not in the baseline (before-leak sources) of `key`.
fn split_against(s: &Usage, key: &Usage) -> SourcesOut {
    let mut new = SourcesOut::default();
    let pairs: [(&Counted, &Counted, Field); 4] = [
        (&s.after.ips, &key.before.ips, |x| &mut x.ips),
        (&s.after.networks, &key.before.networks, |x| &mut x.networks),
        (&s.after.countries, &key.before.countries, |x| {
            &mut x.countries
        }),
        (&s.after.clients, &key.before.clients, |x| &mut x.clients),
    ];
    for (after, before, field) in pairs {
        for v in after.values.keys() {
            if !before.has(v) {
                field(&mut new).push(v.clone());
            }
        }
    }
    new
}

/// Where to remove the secret from.
fn clean_list(leak: &Leak) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &leak.leaked_where {
        let s = match p.source.as_str() {
            "git" => format!(
                "git {}: commit {} ({}); the secret stays in history until it is rewritten (git filter-repo) and every clone refreshed",
                p.repository.as_deref().unwrap_or("?"),
                p.commit.as_deref().unwrap_or("?"),
                p.path
            ),
            "image" => format!(
                "image {} ({}): rebuild without the secret and delete every tag and digest that ships it",
                p.image.as_deref().unwrap_or("?"),
                p.layer.as_deref().unwrap_or("layer")
            ),
            "log" => format!("log {} line {}: delete or redact the log", p.path, p.line),
            _ => format!("{} line {}", p.path, p.line),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The action for a record. `as_of` (RFC 3339, the run's time) is the cut-off of
/// the session-revocation policies: sessions issued before it are denied.
fn action(
    leak: &Leak,
    verdict: Verdict,
    status: &str,
    sessions: &[SessionOut],
    as_of: &str,
    identity: &IdentityOut,
) -> Action {
    if leak.kind == CredentialKind::GcpServiceAccountKey {
        return gcp_action(leak, verdict, status, identity);
    }
    if leak.kind == CredentialKind::AzureClientSecret {
        return azure_action(leak, verdict, status);
    }
    let key = &leak.credential_id;
    let clean = clean_list(leak);
    let aws_key = leak.kind == CredentialKind::AwsAccessKey;
    let revoke = format!("keytrail revoke aws-key --access-key-id {key}");
    let rotate = format!("keytrail rotate aws-key --access-key-id {key}");
    let mut commands = Vec::new();
    let (kind, summary) = match verdict {
        Verdict::Compromised => {
            if aws_key {
                commands.push(revoke);
            }
            let mut roles: Vec<&str> = sessions
                .iter()
                .filter_map(|s| s.role_arn.as_deref())
                .collect();
            roles.sort();
            roles.dedup();
            for r in roles {
                commands.push(format!(
                    "aws iam put-role-policy --role-name {} --policy-name AWSRevokeOlderSessions --policy-document '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{{\"DateLessThan\":{{\"aws:TokenIssueTime\":\"{as_of}\"}}}}}}]}}'",
                    r.rsplit('/').next().unwrap_or(r)
                ));
            }
            (
                "revoke_now",
                "revoke now: used from sources it never used before; revoke the sessions it opened, then investigate what they touched",
            )
        }
        Verdict::KnownSources | Verdict::NotUsed | Verdict::LeakTimeUnknown
            if status != "deleted" =>
        {
            if aws_key {
                commands.push(rotate);
            }
            (
                "rotate",
                "rotate: the secret is public even if only known sources used it; replace it and remove it from the source",
            )
        }
        Verdict::NoAuditLog => (
            "rotate",
            "rotate the credential at its provider (no audit log was read for it) and remove it from the source",
        ),
        _ => {
            if status == "inactive" && aws_key {
                commands.push(revoke);
            }
            (
                "remove_from_source",
                "the key no longer works: remove it from the source (and delete it if it is only inactive)",
            )
        }
    };
    Action {
        kind: kind.into(),
        summary: summary.into(),
        commands,
        clean,
    }
}

/// The identity of a leaked Google Cloud service-account key: the snapshot's
/// key list first, else the principal the audit logs name for it, else the
/// `client_email` of the key file. A key missing from the key list of its own
/// project (in the snapshot) was deleted.
fn gcp_identity(
    leak: &Leak,
    dir: &Directory,
    usage: &Usage,
    notes: &mut Vec<String>,
) -> (IdentityOut, String, Vec<String>, Reach) {
    let key = leak.credential_id.as_str();
    let from = if dir.source.is_empty() {
        "snapshot"
    } else {
        dir.source
    };
    if let Some(k) = dir.lookup(key) {
        let identity = IdentityOut {
            arn: Some(k.arn.clone()),
            name: Some(k.name.clone()),
            account_id: Some(k.account_id.clone()),
            from: from.into(),
            owner: Some(k.owner.clone()),
            purpose: k.purpose.clone(),
            environment: k.environment.clone(),
        };
        if k.reach.roles.is_empty() && k.privilege == ["none"] {
            notes.push(format!(
                "the project's IAM policy grants {} no role: roles granted on folders, the organisation or single resources are not in a project snapshot",
                k.name
            ));
        }
        return (
            identity,
            k.key_status.clone(),
            k.privilege.clone(),
            k.reach.clone(),
        );
    }
    // Who the logs or the key file say it is.
    let (email, said_by) = match (&usage.arn, &leak.principal) {
        (Some(e), _) => (Some(e.clone()), "gcp audit log"),
        (None, Some(e)) => (Some(e.clone()), "key file"),
        (None, None) => (None, "none"),
    };
    let project = usage.account_id.clone().or_else(|| {
        email
            .as_deref()
            .and_then(|e| e.split_once('@'))
            .and_then(|(_, d)| d.strip_suffix(".iam.gserviceaccount.com"))
            .map(str::to_string)
    });
    let identity = IdentityOut {
        arn: match (&project, &email) {
            (Some(p), Some(e)) => Some(format!("projects/{p}/serviceAccounts/{e}")),
            _ => None,
        },
        name: email.clone(),
        account_id: project.clone(),
        from: said_by.into(),
        ..IdentityOut::default()
    };
    let mut status = "unknown".to_string();
    match &project {
        Some(p) if dir.gcp_projects.contains(p) => {
            status = "deleted".into();
            notes.push(format!(
                "the snapshot's key list of project {p} does not have this key: it was deleted"
            ));
        }
        Some(p) if !dir.gcp_projects.is_empty() => notes.push(format!(
            "the key belongs to project {p}, which the snapshot does not describe (snapshot: {}): privilege and reach unknown",
            dir.gcp_projects.join(", ")
        )),
        _ if !dir.gcp_projects.is_empty() => notes.push(format!(
            "no key list of the snapshot's projects ({}) has this key, and neither the logs nor the key file name its service account: a deleted key, or one of another project",
            dir.gcp_projects.join(", ")
        )),
        _ => notes.push(
            "no snapshot lists the project's service-account keys (keytrail collect gcp): privilege and reach unknown".into(),
        ),
    }
    (identity, status, vec!["unknown".into()], Reach::default())
}

/// The action for a leaked Google Cloud service-account key: disable it at
/// once when it was used from new sources (then delete it once its use is
/// investigated), else delete it after moving its users to a keyless
/// replacement.
fn gcp_action(leak: &Leak, verdict: Verdict, status: &str, identity: &IdentityOut) -> Action {
    let key = &leak.credential_id;
    let clean = clean_list(leak);
    let account = identity
        .name
        .clone()
        .or_else(|| leak.principal.clone())
        .unwrap_or_else(|| "SERVICE_ACCOUNT_EMAIL".into());
    let project = identity
        .account_id
        .as_deref()
        .map(|p| format!(" --project {p}"))
        .unwrap_or_default();
    let disable =
        format!("gcloud iam service-accounts keys disable {key} --iam-account {account}{project}");
    let delete = format!(
        "gcloud iam service-accounts keys delete {key} --iam-account {account}{project} --quiet"
    );
    let mut commands = Vec::new();
    let (kind, summary) = match verdict {
        Verdict::Compromised => {
            commands.push(disable);
            commands.push(delete);
            (
                "revoke_now",
                "revoke now: used from sources it never used before; disable the key, review what the service account did since the leak (access tokens it minted stay valid until they expire), then delete it",
            )
        }
        Verdict::KnownSources
        | Verdict::NotUsed
        | Verdict::LeakTimeUnknown
        | Verdict::NoAuditLog
            if status != "deleted" =>
        {
            commands.push(delete);
            (
                "rotate",
                "rotate: the key is public even if only known sources used it; move its users to a keyless replacement (keytrail exposure --plan), delete it and remove it from the source",
            )
        }
        _ => {
            if status == "inactive" {
                commands.push(delete);
            }
            (
                "remove_from_source",
                "the key no longer works: remove it from the source (and delete it if it is only disabled)",
            )
        }
    };
    Action {
        kind: kind.into(),
        summary: summary.into(),
        commands,
        clean,
    }
}

/// The identity of a leaked Entra ID client secret: the application and key
/// the snapshot ties it to ([`Directory::resolve`]), else the application id
/// named next to it, with why nothing more is known.
fn azure_identity(
    leak: &Leak,
    dir: &Directory,
    notes: &mut Vec<String>,
) -> (IdentityOut, String, Vec<String>, Reach) {
    let from = if dir.source.is_empty() {
        "snapshot"
    } else {
        dir.source
    };
    if let Some(k) = dir.lookup(&leak.credential_id) {
        let identity = IdentityOut {
            arn: Some(k.arn.clone()),
            name: Some(k.name.clone()),
            account_id: Some(k.account_id.clone())
                .filter(|a| !a.is_empty())
                .or_else(|| leak.account.clone()),
            from: from.into(),
            owner: Some(k.owner.clone()),
            purpose: k.purpose.clone(),
            environment: k.environment.clone(),
        };
        return (
            identity,
            k.key_status.clone(),
            k.privilege.clone(),
            k.reach.clone(),
        );
    }
    let Some(app) = leak.principal.as_deref().map(str::to_ascii_lowercase) else {
        notes.push(
            "no application (client) id next to the secret: its application and key id cannot be told, nor its sign-ins".into(),
        );
        return (
            IdentityOut {
                from: "none".into(),
                account_id: leak.account.clone(),
                ..IdentityOut::default()
            },
            "unknown".into(),
            Vec::new(),
            Reach::default(),
        );
    };
    let identity = IdentityOut {
        arn: Some(format!("entra:application/{app}")),
        account_id: leak.account.clone(),
        from: "key file".into(),
        ..IdentityOut::default()
    };
    let mut status = "unknown".to_string();
    let ambiguous = leak
        .notes
        .iter()
        .any(|n| n.contains("cannot be told without the secret"));
    if ambiguous {
        // Said by the resolution already.
    } else if dir.azure_apps.contains(&app) {
        status = "deleted".into();
        notes.push(format!(
            "application {app} lists no client secret starting with the leaked secret's first three characters: it was removed (or the snapshot's listing has no hints)"
        ));
    } else if !dir.azure_apps.is_empty() {
        notes.push(format!(
            "application {app} is not among the snapshot's applications (another tenant, or deleted): privilege, reach and sign-ins unknown"
        ));
    } else {
        notes.push(
            "no snapshot lists the tenant's applications (keytrail collect azure): the secret's key id, privilege and sign-ins are unknown".into(),
        );
    }
    (identity, status, vec!["unknown".into()], Reach::default())
}

/// The action for a leaked Entra ID client secret: remove it from its
/// application (at once when it was used from new sources).
fn azure_action(leak: &Leak, verdict: Verdict, status: &str) -> Action {
    let clean = clean_list(leak);
    let app = leak
        .principal
        .clone()
        .unwrap_or_else(|| "APPLICATION_ID".into());
    let key = if crate::leaks::is_guid(&leak.credential_id) {
        leak.credential_id.clone()
    } else {
        "KEY_ID".into()
    };
    let delete = format!("az ad app credential delete --id {app} --key-id {key}");
    let mut commands = Vec::new();
    let (kind, summary) = match verdict {
        Verdict::Compromised => {
            commands.push(delete);
            (
                "revoke_now",
                "revoke now: used from sources it never used before; delete the secret from the application, then review what its service principal did (Azure Activity, Microsoft 365 and Graph activity logs); tokens it already obtained stay valid until they expire",
            )
        }
        Verdict::InactiveOrDeleted => (
            "remove_from_source",
            "the secret no longer works: remove it from the source",
        ),
        _ if status == "deleted" => (
            "remove_from_source",
            "the secret no longer works: remove it from the source",
        ),
        _ => {
            commands.push(delete);
            (
                "rotate",
                "rotate: the secret is public even if only known sources used it; move its users to a federated credential or a managed identity (keytrail exposure --plan), delete the secret and remove it from the source",
            )
        }
    };
    Action {
        kind: kind.into(),
        summary: summary.into(),
        commands,
        clean,
    }
}
