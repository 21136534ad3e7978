//! Attacker-playbook detectors for the other clouds: Google Cloud (service-account
//! keys used from anonymising or unusual networks, new keys, GPU or new-region
//! instances and mining images, owner/editor granted outside the organisation),
//! Microsoft Entra ID (consent to risky or known-abused OAuth applications, user
//! consent loosened, credentials added to an application and then used from a new
//! network) and Microsoft 365 (inbox rules that hide mail, mailbox permissions and
//! forwarding, bursts of sending or company-wide sharing after a risky sign-in).
//!
//! Each detector is one variant of [`CloudRule`], the registry (id, title, severity,
//! ATT&CK technique and window in [`CloudRule::def`]); the logic is in
//! [`CloudPlaybook::process`], which sees the identity's baseline before the event
//! and the IP intelligence of its address, as the AWS playbook does. Rule ids are
//! `keytrail.<provider>.<id>`. Lists that are data live in `data/oauth-apps.yml`.
//! First use of a new Google Cloud key or Entra credential from another network than
//! its creator's is the behavioural `new-key-network` rule (see `baseline`), which
//! reads the key ids [`Event::created_key`] finds.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock};

use keytrail_types::Severity;
use serde::Deserialize;
use serde_json::Value;

use crate::alert::{AlertSource, Hit, RuleDef, RuleInfo};
use crate::baseline::{AccountState, Attempt, Baseline, CloudMemory, Spray, net_prefix};
use crate::event::{
    Event, IdentityKind, Provider, credential_operation, member, modified_properties, parameters,
};
use crate::ipintel::{IpInfo, NetworkClass};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// The detectors for Google Cloud, Entra ID and Microsoft 365.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudRule {
    /// A Google Cloud service-account key used from Tor, a VPN, or a network class its
    /// baseline never used (residential, hosting).
    GcpKeyAnonymousNetwork,
    /// A Google Cloud service-account key created.
    GcpKeyCreated,
    /// Compute instances with GPUs, many at once, in a region the project never used,
    /// or from a mining image.
    GcpMiningInstances,
    /// Owner or editor granted to a principal outside the caller's organisation.
    GcpOwnerOutside,
    /// Consent to a known-abused OAuth application or to one asking mailbox or
    /// all-files permissions.
    EntraRiskyConsent,
    /// User consent to applications loosened at tenant level.
    EntraConsentLoosened,
    /// Credentials added to an application or service principal.
    EntraCredentialAdded,
    /// A service principal that just got new credentials signs in from a new network.
    EntraNewCredentialNewNetwork,
    /// An inbox rule that moves, deletes or marks mail read by sender or keyword.
    M365InboxRule,
    /// Mailbox permissions granted or mail forwarded.
    M365MailboxAccess,
    /// A burst of sending or company-wide sharing after a risky sign-in.
    M365BurstAfterRiskySignIn,
    /// One address fails sign-ins for many accounts (password spray, credential
    /// stuffing), in Entra ID sign-in logs or the unified audit log.
    EntraPasswordSpray,
    /// An account signs in (or passes its password and is stopped only by MFA or
    /// Conditional Access) from an address that sprayed passwords.
    EntraSignInAfterSpray,
    /// A user or service principal added to a privileged directory role.
    EntraPrivilegedRole,
    /// Mailbox or unified auditing turned off, or a mailbox exempted from it.
    M365AuditDisabled,
    /// [`CloudRule::EntraPasswordSpray`] on Google Workspace logins.
    GcpPasswordSpray,
    /// [`CloudRule::EntraSignInAfterSpray`] on Google Workspace logins.
    GcpSignInAfterSpray,
}

impl CloudRule {
    /// Every rule, in the order of [`RULES`].
    pub const ALL: [CloudRule; 17] = [
        CloudRule::GcpKeyAnonymousNetwork,
        CloudRule::GcpKeyCreated,
        CloudRule::GcpMiningInstances,
        CloudRule::GcpOwnerOutside,
        CloudRule::EntraRiskyConsent,
        CloudRule::EntraConsentLoosened,
        CloudRule::EntraCredentialAdded,
        CloudRule::EntraNewCredentialNewNetwork,
        CloudRule::M365InboxRule,
        CloudRule::M365MailboxAccess,
        CloudRule::M365BurstAfterRiskySignIn,
        CloudRule::EntraPasswordSpray,
        CloudRule::EntraSignInAfterSpray,
        CloudRule::EntraPrivilegedRole,
        CloudRule::M365AuditDisabled,
        CloudRule::GcpPasswordSpray,
        CloudRule::GcpSignInAfterSpray,
    ];

    /// The provider part of the rule id.
    pub const fn provider(self) -> Provider {
        match self {
            CloudRule::GcpKeyAnonymousNetwork
            | CloudRule::GcpKeyCreated
            | CloudRule::GcpMiningInstances
            | CloudRule::GcpOwnerOutside
            | CloudRule::GcpPasswordSpray
            | CloudRule::GcpSignInAfterSpray => Provider::Gcp,
            CloudRule::EntraRiskyConsent
            | CloudRule::EntraConsentLoosened
            | CloudRule::EntraCredentialAdded
            | CloudRule::EntraNewCredentialNewNetwork
            | CloudRule::EntraPasswordSpray
            | CloudRule::EntraSignInAfterSpray
            | CloudRule::EntraPrivilegedRole => Provider::Entra,
            CloudRule::M365InboxRule
            | CloudRule::M365MailboxAccess
            | CloudRule::M365BurstAfterRiskySignIn
            | CloudRule::M365AuditDisabled => Provider::M365,
        }
    }

    /// The rule's definition (id after `keytrail.<provider>.`).
    pub const fn def(self) -> RuleDef {
        let (id, title, severity, technique, tactic) = match self {
            CloudRule::GcpKeyAnonymousNetwork => (
                "initial-access.service-account-key-anonymous-network",
                "Service-account key used from Tor, a VPN, or a network class the account never used",
                Severity::High,
                "T1078.004",
                "initial-access",
            ),
            CloudRule::GcpKeyCreated => (
                "persistence.service-account-key-created",
                "Service-account key created",
                Severity::Medium,
                "T1098.001",
                "persistence",
            ),
            CloudRule::GcpMiningInstances => (
                "impact.compute-mining-instances",
                "Compute instances with GPUs, in bulk, in a never-used region, or from a mining image",
                Severity::High,
                "T1496",
                "impact",
            ),
            CloudRule::GcpOwnerOutside => (
                "persistence.owner-or-editor-granted-outside",
                "Owner or editor role granted to a principal outside the organisation",
                Severity::High,
                "T1098.003",
                "persistence",
            ),
            CloudRule::EntraRiskyConsent => (
                "initial-access.risky-oauth-consent",
                "Consent to a known-abused OAuth application or to mailbox or all-files permissions",
                Severity::High,
                "T1528",
                "credential-access",
            ),
            CloudRule::EntraConsentLoosened => (
                "defense-evasion.user-consent-loosened",
                "Users allowed to consent to applications (tenant consent settings loosened)",
                Severity::High,
                "T1562",
                "defense-evasion",
            ),
            CloudRule::EntraCredentialAdded => (
                "persistence.application-credential-added",
                "Credentials added to an application or service principal",
                Severity::Medium,
                "T1098.001",
                "persistence",
            ),
            CloudRule::EntraNewCredentialNewNetwork => (
                "persistence.new-credential-used-from-new-network",
                "Service principal signs in from a new network after new credentials were added",
                Severity::High,
                "T1098.001",
                "persistence",
            ),
            CloudRule::M365InboxRule => (
                "defense-evasion.inbox-rule-hides-mail",
                "Inbox rule that moves, deletes or marks mail read by sender or keyword",
                Severity::High,
                "T1564.008",
                "defense-evasion",
            ),
            CloudRule::M365MailboxAccess => (
                "collection.mailbox-permission-or-forwarding",
                "Mailbox permission granted or mail forwarded",
                Severity::Medium,
                "T1114.003",
                "collection",
            ),
            CloudRule::M365BurstAfterRiskySignIn => (
                "lateral-movement.burst-after-risky-sign-in",
                "Burst of internal mail or company-wide sharing after a risky sign-in",
                Severity::High,
                "T1534",
                "lateral-movement",
            ),
            CloudRule::EntraPasswordSpray | CloudRule::GcpPasswordSpray => (
                "credential-access.password-spray",
                "One address failed sign-ins for many accounts (password spray or credential stuffing)",
                Severity::High,
                "T1110.003",
                "credential-access",
            ),
            CloudRule::EntraSignInAfterSpray | CloudRule::GcpSignInAfterSpray => (
                "initial-access.sign-in-after-password-spray",
                "Sign-in, or a correct password stopped only by MFA or Conditional Access, from an address that sprayed passwords",
                Severity::Critical,
                "T1110.003",
                "initial-access",
            ),
            CloudRule::EntraPrivilegedRole => (
                "persistence.privileged-role-assigned",
                "User or service principal added to a privileged directory role",
                Severity::High,
                "T1098.003",
                "persistence",
            ),
            CloudRule::M365AuditDisabled => (
                "defense-evasion.audit-disabled",
                "Mailbox or unified audit logging turned off, or a mailbox exempted from auditing",
                Severity::High,
                "T1562.008",
                "defense-evasion",
            ),
        };
        RuleDef {
            id,
            title,
            severity,
            technique,
            tactic,
            window_ms: HOUR_MS,
            source: AlertSource::Playbook,
        }
    }

    /// The rule's metadata, shared by every alert it raises.
    pub fn info(self) -> &'static Arc<RuleInfo> {
        &RULES[self as usize]
    }
}

/// The metadata of every rule, in [`CloudRule::ALL`] order.
pub static RULES: LazyLock<Vec<Arc<RuleInfo>>> = LazyLock::new(|| {
    CloudRule::ALL
        .iter()
        .map(|r| Arc::new(r.def().info_in(r.provider().as_str())))
        .collect()
});

fn hit(r: CloudRule, severity: Option<Severity>, explanation: String) -> Hit {
    let mut h = Hit::new(r.info(), explanation);
    h.severity = severity;
    h
}

/// The list of `data/oauth-apps.yml`.
#[derive(Debug, Deserialize)]
pub struct OAuthApps {
    /// Known-abused applications.
    pub apps: Vec<OAuthApp>,
    /// Permissions that give an application the mailbox or every file.
    pub risky_scopes: Vec<String>,
}

/// One known-abused OAuth application.
#[derive(Debug, Deserialize)]
pub struct OAuthApp {
    /// Display name as Entra ID logs it.
    pub name: String,
    /// Application (client) id.
    pub app_id: String,
    /// Where it was reported.
    pub sources: Vec<String>,
}

/// The embedded `data/oauth-apps.yml`.
pub static OAUTH_APPS: LazyLock<OAuthApps> = LazyLock::new(|| {
    serde_yaml_ng::from_str(include_str!("../data/oauth-apps.yml"))
        .expect("data/oauth-apps.yml is valid (tested)")
});

/// Machine types with GPUs or accelerators (`a2-highgpu-1g`, `g2-standard-4` …).
const GPU_MACHINE_PREFIXES: &[&str] = &["a2-", "a3-", "a4-", "g2-", "g4-", "ct5", "ct6", "tpu"];

/// Words in image names, startup scripts and container commands of crypto miners.
const MINER_WORDS: &[&str] = &[
    "xmrig",
    "xmr-stak",
    "monero",
    "nicehash",
    "minerd",
    "cpuminer",
    "ethminer",
    "nbminer",
    "lolminer",
    "phoenixminer",
    "t-rex",
    "cryptonight",
    "stratum+tcp",
];

/// Roles that own a project or folder.
const OWNER_ROLES: &[&str] = &[
    "roles/owner",
    "roles/editor",
    "roles/resourcemanager.organizationAdmin",
    "roles/resourcemanager.folderAdmin",
    "roles/iam.securityAdmin",
];

/// Entra ID directory roles that control the tenant: Critical when assigned.
const TENANT_ADMIN_ROLES: &[&str] = &[
    "global administrator",
    "company administrator",
    "privileged role administrator",
    "privileged authentication administrator",
    "partner tier2 support",
];

/// Other Entra ID roles that reach every user, application, mailbox or device
/// (Microsoft's list of privileged roles): High when assigned.
const PRIVILEGED_ROLES: &[&str] = &[
    "application administrator",
    "cloud application administrator",
    "authentication administrator",
    "conditional access administrator",
    "exchange administrator",
    "sharepoint administrator",
    "security administrator",
    "user administrator",
    "helpdesk administrator",
    "password administrator",
    "hybrid identity administrator",
    "intune administrator",
    "domain name administrator",
    "external identity provider administrator",
    "directory synchronization accounts",
    "directory writers",
    "groups administrator",
    "teams administrator",
    "compliance administrator",
    "azure ad joined device local administrator",
    "cloud device administrator",
    "b2c ief keyset administrator",
    "partner tier1 support",
];

/// Mailbox protocols that sign in with a password alone (legacy authentication,
/// used to read mail past MFA).
const LEGACY_PROTOCOLS: &[(&str, &str)] = &[
    ("ImapEnabled", "IMAP"),
    ("PopEnabled", "POP"),
    ("MAPIEnabled", "MAPI"),
    ("ActiveSyncEnabled", "ActiveSync"),
    ("EwsEnabled", "EWS"),
];

/// Inbox-rule parameters that hide mail.
const HIDING_ACTIONS: &[&str] = &[
    "DeleteMessage",
    "SoftDeleteMessage",
    "PermanentDelete",
    "MoveToFolder",
    "MarkAsRead",
];

/// Inbox-rule conditions on the sender or words.
const SENDER_OR_WORDS: &[&str] = &[
    "From",
    "FromAddressContainsWords",
    "SubjectContainsWords",
    "SubjectOrBodyContainsWords",
    "BodyContainsWords",
    "HeaderContainsWords",
    "SenderDomainIs",
];

/// Words attackers hide (replies about the compromise, payments).
const ALARM_WORDS: &[&str] = &[
    "hack",
    "phish",
    "compromis",
    "suspicious",
    "security",
    "password",
    "helpdesk",
    "help desk",
    "it support",
    "invoice",
    "payment",
    "wire",
    "bank",
];

/// Per-run state of the detectors (bounded maps and windows); its memory
/// is kept in the `--state` file between runs ([`CloudMemory`]), so that a
/// credential added in one run and used in the next, or a risky sign-in
/// followed by a burst in a later file, is still caught.
#[derive(Default)]
pub struct CloudPlaybook {
    /// Credentials just added to applications: target (id, app id or name,
    /// lower-cased) → time added.
    new_credentials: HashMap<Box<str>, i64>,
    /// Identities with a risky sign-in → its time.
    risky: HashMap<Box<str>, i64>,
    /// Sending and sharing windows per identity.
    bursts: HashMap<Box<str>, VecDeque<i64>>,
    /// Sign-in attempts per source address in the last [`SPRAY_WINDOW_MS`].
    attempts: HashMap<Box<str>, VecDeque<Attempt>>,
    /// Addresses that sprayed → when, and the accounts they tried.
    sprayed: HashMap<Box<str>, Spray>,
}

const MAX_TRACKED: usize = 100_000;

/// How far back failed sign-ins from one address count towards a spray.
const SPRAY_WINDOW_MS: i64 = 30 * MINUTE_MS;
/// Accounts an address must fail (and never pass) within the window.
const SPRAY_ACCOUNTS: usize = 5;
/// Attempts kept per address (a spray of thousands keeps its newest).
const MAX_ATTEMPTS: usize = 2048;
/// Accounts remembered per spray.
const MAX_SPRAYED_ACCOUNTS: usize = 4096;

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Signed in.
    Success,
    /// The password was right; MFA, Conditional Access, an expired password or a
    /// sign-in interrupt stopped it.
    PasswordCorrect,
    /// Wrong password, unknown or locked account, or another failure.
    Failure,
}

/// Entra ID sign-in error codes that come after the password was accepted
/// (documented in Microsoft's AADSTS error list): MFA required or failed, MFA
/// registration, Conditional Access or security defaults blocks, expired or
/// must-change password, "keep me signed in" and other interrupts.
const PASSWORD_CORRECT_CODES: &[&str] = &[
    "50055", "50072", "50074", "50076", "50079", "50125", "50140", "50158", "500121", "53003",
    "530032", "530034", "50097",
];

/// Who was added to a directory role: the unified audit log's `ObjectId`, or the
/// first user or service principal of `targetResources` (an array, or JSON text in
/// Log Analytics rows).
fn role_member(ev: &Event) -> String {
    for path in [
        "ObjectId",
        "targetResources",
        "TargetResources",
        "properties.targetResources",
    ] {
        let list = match ev.lookup(path) {
            Some(Value::String(t)) if t.trim_start().starts_with('[') => {
                serde_json::from_str::<Value>(t).ok()
            }
            Some(Value::String(t)) if !t.is_empty() => return t.clone(),
            Some(v @ Value::Array(_)) => Some(v.clone()),
            _ => None,
        };
        let found = list.as_ref().and_then(Value::as_array).and_then(|a| {
            a.iter()
                .filter(|t| {
                    member(t, "type")
                        .and_then(Value::as_str)
                        .is_none_or(|k| !k.eq_ignore_ascii_case("Role"))
                })
                .find_map(|t| {
                    member(t, "userPrincipalName")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .or_else(|| member(t, "displayName").and_then(Value::as_str))
                        .map(String::from)
                })
        });
        if let Some(m) = found {
            return m;
        }
    }
    "a member".into()
}

/// The alert for `who` passing a sign-in from `ip`, which sprayed.
fn after_spray(rule: CloudRule, who: &str, ip: &str, outcome: Outcome, s: &Spray, t: i64) -> Hit {
    let targeted = s.accounts.iter().any(|a| &**a == who);
    let (severity, what) = match outcome {
        Outcome::Success => (None, "signed in"),
        _ => (
            Some(Severity::High),
            "passed its password (stopped or challenged by MFA, Conditional Access or an interrupt)",
        ),
    };
    hit(
        rule,
        severity,
        format!(
            "{who} {what} from {ip}, which failed sign-ins for {} accounts{} ({:+.0} min from the spray)",
            s.accounts.len(),
            if targeted { " including this one" } else { "" },
            (t - s.at_ms) as f64 / MINUTE_MS as f64
        ),
    )
}

/// `LogonError` values of the unified audit log that come after the password
/// was accepted (the names of the codes above).
const PASSWORD_CORRECT_ERRORS: &[&str] = &[
    "UserStrongAuthClientAuthNRequiredInterrupt",
    "UserStrongAuthClientAuthNRequired",
    "UserStrongAuthEnrollmentRequiredInterrupt",
    "UserStrongAuthExpired",
    "StrongAuthenticationFailed",
    "BlockedByConditionalAccess",
    "KmsiInterrupt",
    "UserPasswordExpired",
    "DeviceAuthenticationRequired",
];

/// The account and outcome of a sign-in attempt: an Entra ID sign-in (user, not a
/// service principal) or a unified-audit-log `UserLoggedIn`/`UserLoginFailed`.
fn sign_in_attempt(ev: &Event) -> Option<Outcome> {
    let code = ev.error_code();
    if ev.provider() == Provider::Entra && ev.service() == "signin" {
        if ev.identity_kind() != Some(IdentityKind::EntraUser) {
            return None;
        }
        return Some(match code {
            None => Outcome::Success,
            Some(c) if PASSWORD_CORRECT_CODES.contains(&c) => Outcome::PasswordCorrect,
            Some(_) => Outcome::Failure,
        });
    }
    if ev.provider() == Provider::Gcp && ev.event_source() == "login.googleapis.com" {
        // Google Workspace: `login_success`/`login_failure` (Reports API), or
        // `google.login.LoginService.loginFailure` (Cloud Logging).
        let n: String = ev
            .event_name()
            .bytes()
            .filter(|&c| c != b'_')
            .map(|c| c.to_ascii_lowercase() as char)
            .collect();
        return if n.ends_with("loginsuccess") {
            Some(Outcome::Success)
        } else if n.ends_with("loginfailure") {
            Some(Outcome::Failure)
        } else {
            None
        };
    }
    if ev.provider() != Provider::M365 {
        return None;
    }
    match ev.event_name() {
        "UserLoggedIn" if code.is_none() => Some(Outcome::Success),
        "UserLoginFailed" => {
            let error = ev
                .lookup("LogonError")
                .and_then(Value::as_str)
                .unwrap_or("");
            Some(
                if PASSWORD_CORRECT_ERRORS
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(error))
                {
                    Outcome::PasswordCorrect
                } else {
                    Outcome::Failure
                },
            )
        }
        _ => None,
    }
}

fn is_true(s: &str) -> bool {
    s.eq_ignore_ascii_case("true") || s == "1"
}

/// The domain of a principal (`user:a@b.com` → `b.com`).
fn domain(member: &str) -> Option<&str> {
    let m = member.split_once(':').map_or(member, |(_, m)| m);
    let d = m.rsplit_once('@').map_or(m, |(_, d)| d);
    Some(d).filter(|d| d.contains('.')).map(|d| d.trim())
}

/// Whether `member` of an IAM binding is outside the caller's organisation (public,
/// another domain, another project's service account).
fn outside_member(member: &str, caller: &str, project: &str) -> bool {
    if matches!(member, "allUsers" | "allAuthenticatedUsers") {
        return true;
    }
    let (kind, who) = member.split_once(':').unwrap_or(("", member));
    match kind {
        "serviceAccount" => {
            // Google-managed agents (`service-…@gcp-sa-….iam.gserviceaccount.com`,
            // `…@cloudservices.gserviceaccount.com`) belong to the platform.
            let d = who.rsplit_once('@').map_or("", |(_, d)| d);
            let managed = d.starts_with("gcp-sa-")
                || d == "cloudservices.gserviceaccount.com"
                || d == "developer.gserviceaccount.com"
                || d == "appspot.gserviceaccount.com";
            let sa_project = d.strip_suffix(".iam.gserviceaccount.com");
            !managed && sa_project.is_some_and(|p| !project.is_empty() && p != project)
        }
        "user" | "group" | "domain" => {
            let caller_domain = if caller.ends_with(".gserviceaccount.com") {
                None
            } else {
                domain(caller)
            };
            match (domain(who), caller_domain) {
                (Some(d), Some(c)) => !d.eq_ignore_ascii_case(c),
                // A service account granted a person: a consumer account is outside.
                (Some(d), None) => d.eq_ignore_ascii_case("gmail.com"),
                _ => false,
            }
        }
        _ => false,
    }
}

impl CloudPlaybook {
    /// Runs the detectors on `ev` (an event of any cloud but AWS). `base` is the
    /// identity's baseline before this event; `info` the IP intelligence of its
    /// address.
    pub fn process(
        &mut self,
        ev: &Event,
        base: Option<&Baseline>,
        info: Option<&IpInfo>,
        account: &AccountState,
        hits: &mut Vec<Hit>,
    ) {
        match ev.provider() {
            Provider::Aws => {}
            Provider::Gcp => {
                self.spray(ev, hits);
                self.gcp(ev, base, info, account, hits)
            }
            Provider::Entra | Provider::M365 | Provider::Azure => {
                self.spray(ev, hits);
                self.microsoft(ev, base, info, hits)
            }
        }
    }

    fn gcp(
        &mut self,
        ev: &Event,
        base: Option<&Baseline>,
        info: Option<&IpInfo>,
        account: &AccountState,
        hits: &mut Vec<Hit>,
    ) {
        let who = ev.principal();
        let name = ev.event_name();
        let ip = ev.source_ip();
        let failed = ev.error_code().is_some();
        // Service-account keys from anonymising or unusual networks.
        if ev.identity_kind() == Some(IdentityKind::GcpServiceAccount)
            && let (Some(key), Some(info)) = (ev.access_key_id(), info)
        {
            let seen = |c: NetworkClass| base.and_then(|b| b.classes.get(&c).copied()).unwrap_or(0);
            let classified: u32 = base.map_or(0, |b| b.classes.values().sum());
            let what = match info.class {
                NetworkClass::Tor | NetworkClass::Vpn if seen(info.class) == 0 => {
                    Some((None, info.class.as_str()))
                }
                NetworkClass::Residential | NetworkClass::Datacenter
                    if classified >= 20 && seen(info.class) == 0 =>
                {
                    Some((Some(Severity::Medium), info.class.as_str()))
                }
                _ => None,
            };
            if let Some((sev, class)) = what {
                hits.push(hit(
                    CloudRule::GcpKeyAnonymousNetwork,
                    sev,
                    format!(
                        "service-account key {key} of {who} called {name} from {ip}, a {class} address (AS{} {}); its {classified} classified calls before never came from {class}",
                        info.asn.map_or("?".into(), |a| a.to_string()),
                        info.org.as_deref().unwrap_or("")
                    ),
                ));
            }
        }
        if failed {
            return;
        }
        if name.ends_with("CreateServiceAccountKey") {
            let target = ev
                .lookup("protoPayload.request.name")
                .and_then(Value::as_str)
                .unwrap_or("a service account");
            let key = ev.created_key().unwrap_or_else(|| "?".into());
            hits.push(hit(
                CloudRule::GcpKeyCreated,
                None,
                format!("{who} created key {key} for {target} from {ip}; long-lived service-account keys are what leaks"),
            ));
        }
        if name.contains("compute.instances.insert")
            || name.contains("compute.instances.bulkInsert")
            || name.contains("compute.instanceTemplates.insert")
        {
            let req = ev.lookup("protoPayload.request");
            let req_text = req.map(Value::to_string).unwrap_or_default();
            let lower = req_text.to_ascii_lowercase();
            let machine = req
                .and_then(|r| member(r, "machineType"))
                .and_then(Value::as_str)
                .or_else(|| {
                    req.and_then(|r| member(r, "instanceProperties"))
                        .and_then(|p| member(p, "machineType"))
                        .and_then(Value::as_str)
                })
                .unwrap_or("");
            let mtype = machine.rsplit('/').next().unwrap_or(machine);
            let gpu = lower.contains("guestaccelerators")
                || lower.contains("nvidia")
                || GPU_MACHINE_PREFIXES.iter().any(|p| mtype.starts_with(p));
            let count = req
                .and_then(|r| member(r, "count"))
                .and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()))
                .unwrap_or(1);
            let miner = MINER_WORDS.iter().find(|w| lower.contains(*w));
            let new_region =
                account.learned(ev) && !ev.region().is_empty() && !account.region_used(ev);
            let mut why = Vec::new();
            if gpu {
                why.push(format!("GPU machine type {mtype}"));
            }
            if count >= 10 {
                why.push(format!("{count} instances"));
            }
            if new_region {
                why.push(format!(
                    "region {} that the project never used",
                    ev.region()
                ));
            }
            if let Some(w) = miner {
                why.push(format!("a mining image or script (\"{w}\")"));
            }
            if !why.is_empty() {
                hits.push(hit(
                    CloudRule::GcpMiningInstances,
                    None,
                    format!("{who} created instances with {} from {ip}", why.join(", ")),
                ));
            }
        }
        if name.ends_with("SetIamPolicy") || name.ends_with("SetIAMPolicy") {
            let project = ev.recipient_account();
            let mut outside = Vec::new();
            for path in [
                "protoPayload.serviceData.policyDelta.bindingDeltas",
                "protoPayload.metadata.policyDelta.bindingDeltas",
            ] {
                if let Some(Value::Array(ds)) = ev.lookup(path) {
                    for d in ds {
                        let action = member(d, "action").and_then(Value::as_str).unwrap_or("");
                        let role = member(d, "role").and_then(Value::as_str).unwrap_or("");
                        let m = member(d, "member").and_then(Value::as_str).unwrap_or("");
                        if action == "ADD"
                            && OWNER_ROLES.contains(&role)
                            && outside_member(m, who, project)
                        {
                            outside.push(format!("{role} to {m}"));
                        }
                    }
                }
            }
            if !outside.is_empty() {
                let res = ev
                    .lookup("protoPayload.resourceName")
                    .and_then(Value::as_str)
                    .unwrap_or(project);
                hits.push(hit(
                    CloudRule::GcpOwnerOutside,
                    None,
                    format!("{who} granted {} on {res} from {ip}", outside.join(", ")),
                ));
            }
        }
    }

    fn microsoft(
        &mut self,
        ev: &Event,
        base: Option<&Baseline>,
        info: Option<&IpInfo>,
        hits: &mut Vec<Hit>,
    ) {
        let who = ev.principal();
        let name = ev.event_name().trim();
        let op = name.trim_end_matches('.').to_ascii_lowercase();
        let ip = if ev.source_ip().is_empty() {
            "an unknown address"
        } else {
            ev.source_ip()
        };
        let t = ev.time_ms;
        let failed = ev.error_code().is_some();
        self.prune(t);

        // Sign-ins: risky ones open a window; service principals with fresh
        // credentials are checked against their networks.
        if ev.service() == "signin" {
            if failed {
                return;
            }
            let level = |f: &str| {
                ev.lookup(f)
                    .or_else(|| ev.lookup(&format!("properties.{f}")))
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
            };
            let risky_level = ["riskLevelDuringSignIn", "riskLevelAggregated"]
                .iter()
                .filter_map(|f| level(f))
                .any(|l| l == "high" || l == "medium");
            let at_risk =
                level("riskState").is_some_and(|s| s == "atrisk" || s == "confirmedcompromised");
            let anon =
                info.is_some_and(|i| matches!(i.class, NetworkClass::Tor | NetworkClass::Vpn));
            if (risky_level || at_risk || anon) && self.risky.len() < MAX_TRACKED {
                self.risky.insert(Box::from(who), t);
            }
            let kind = ev.identity_kind();
            if matches!(
                kind,
                Some(IdentityKind::ServicePrincipal | IdentityKind::ManagedIdentity)
            ) && let Some(addr) = ev.source_addr
            {
                let keys = [
                    Some(who.to_ascii_lowercase()),
                    ev.arn().map(str::to_ascii_lowercase),
                    ev.lookup("appId")
                        .or_else(|| ev.lookup("properties.appId"))
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase),
                ];
                let added = keys.iter().flatten().find_map(|k| {
                    self.new_credentials
                        .get(k.as_str())
                        .map(|&at| (k.clone(), at))
                });
                if let Some((k, at)) = added
                    && t - at <= 7 * DAY_MS
                {
                    let known = base.is_some_and(|b| b.knows_network(ip));
                    if !known {
                        self.new_credentials.remove(k.as_str());
                        hits.push(hit(
                            CloudRule::EntraNewCredentialNewNetwork,
                            None,
                            format!(
                                "{who} ({}) signed in from {ip} ({}), a network it never used, {:.1} h after new credentials were added to it",
                                ev.arn().unwrap_or("?"),
                                net_prefix(addr),
                                (t - at) as f64 / HOUR_MS as f64
                            ),
                        ));
                    }
                }
            }
            return;
        }
        if failed {
            return;
        }
        let json = ev.json();

        // Consent and permission grants.
        if op == "consent to application"
            || op == "add delegated permission grant"
            || op == "add app role assignment to service principal"
        {
            let raw_lower = ev.raw().to_ascii_lowercase();
            let apps = &*OAUTH_APPS;
            let listed = apps.apps.iter().find(|a| {
                raw_lower.contains(&a.name.to_ascii_lowercase())
                    || raw_lower.contains(&a.app_id.to_ascii_lowercase())
            });
            let scopes: Vec<&str> = apps
                .risky_scopes
                .iter()
                .filter(|s| {
                    let s = s.to_ascii_lowercase();
                    // A scope is a word of the consented permissions.
                    raw_lower.match_indices(&s).any(|(i, _)| {
                        let before = raw_lower[..i].chars().next_back();
                        let after = raw_lower[i + s.len()..].chars().next();
                        let word = |c: Option<char>| {
                            c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                        };
                        !word(before) && !word(after)
                    })
                })
                .map(String::as_str)
                .collect();
            let target = json
                .get("targetResources")
                .or_else(|| {
                    json.get("properties")
                        .and_then(|p| p.get("targetResources"))
                })
                .and_then(|t| t.get(0))
                .and_then(|t| member(t, "displayName"))
                .and_then(Value::as_str)
                .or_else(|| member(json, "ObjectId").and_then(Value::as_str))
                .unwrap_or("an application");
            if let Some(app) = listed {
                hits.push(hit(
                    CloudRule::EntraRiskyConsent,
                    None,
                    format!(
                        "{who} consented to {} (app id {}), an application reported in account takeovers ({}), from {ip}",
                        app.name,
                        app.app_id,
                        app.sources.first().map_or("", String::as_str)
                    ),
                ));
            } else if !scopes.is_empty() && op != "add app role assignment to service principal" {
                hits.push(hit(
                    CloudRule::EntraRiskyConsent,
                    Some(Severity::Medium),
                    format!(
                        "{who} consented to {target} with {} from {ip}; these permissions read or send the mailbox or every file",
                        scopes.join(", ")
                    ),
                ));
            }
        }

        // Tenant consent settings loosened.
        if op.starts_with("update authorization policy")
            || op.starts_with("set company information")
        {
            for (n, old, new) in modified_properties(json) {
                let loosened = (n.contains("PermissionGrantPolicyIdsAssignedToDefaultUserRole")
                    && new.contains("ManagePermissionGrantsForSelf")
                    && !old.contains("ManagePermissionGrantsForSelf"))
                    || (n.contains("UsersPermissionToUserConsentToAppEnabled")
                        && new.to_ascii_lowercase().contains("true")
                        && !old.to_ascii_lowercase().contains("true"));
                if loosened {
                    hits.push(hit(
                        CloudRule::EntraConsentLoosened,
                        None,
                        format!(
                            "{who} let users consent to applications ({n}: {old} → {new}) from {ip}"
                        ),
                    ));
                    break;
                }
            }
        }

        // Credentials added to an application or service principal.
        if credential_operation(name) {
            // Log Analytics rows hold `TargetResources` as JSON text.
            let lists: Vec<Value> = [
                "targetResources",
                "TargetResources",
                "properties.targetResources",
                "Target",
            ]
            .iter()
            .filter_map(|p| ev.lookup(p))
            .filter_map(|v| match v {
                Value::String(t) => serde_json::from_str::<Value>(t).ok(),
                other => Some(other.clone()),
            })
            .collect();
            let targets: Vec<String> = lists
                .iter()
                .filter_map(Value::as_array)
                .flatten()
                .flat_map(|t| {
                    ["id", "displayName", "ID", "appId"]
                        .iter()
                        .filter_map(|k| t.get(*k).and_then(Value::as_str))
                        .map(str::to_ascii_lowercase)
                        .collect::<Vec<_>>()
                })
                .filter(|s| !s.is_empty())
                .collect();
            for k in &targets {
                if self.new_credentials.len() < MAX_TRACKED {
                    self.new_credentials.insert(Box::from(k.as_str()), t);
                }
            }
            let key = ev.created_key();
            hits.push(hit(
                CloudRule::EntraCredentialAdded,
                None,
                format!(
                    "{who} added credentials{} to {} from {ip}",
                    key.map(|k| format!(" (key {k})")).unwrap_or_default(),
                    targets.first().map_or("an application", String::as_str)
                ),
            ));
        }

        // Privileged directory roles.
        if matches!(
            op.as_str(),
            "add member to role"
                | "add eligible member to role"
                | "add scoped member to role"
                | "add member to role completed (pim activation)"
        ) {
            let props = modified_properties(json);
            let role = props
                .iter()
                .find(|(n, ..)| n.eq_ignore_ascii_case("Role.DisplayName"))
                .map(|(_, _, new)| new.trim_matches('"').to_string());
            if let Some(role) = role {
                let lower = role.to_ascii_lowercase();
                let severity = if TENANT_ADMIN_ROLES.contains(&lower.as_str()) {
                    Some(Some(Severity::Critical))
                } else if PRIVILEGED_ROLES.contains(&lower.as_str()) {
                    Some(None)
                } else {
                    None
                };
                if let Some(severity) = severity {
                    let member = role_member(ev);
                    hits.push(hit(
                        CloudRule::EntraPrivilegedRole,
                        severity,
                        format!("{who} added {member} to the {role} role ({name}) from {ip}"),
                    ));
                }
            }
        }

        if ev.provider() != Provider::M365 {
            return;
        }
        let params = parameters(json);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };

        // Inbox rules that hide mail.
        if matches!(
            op.as_str(),
            "new-inboxrule" | "set-inboxrule" | "updateinboxrules"
        ) {
            let raw = ev.raw();
            let hides: Vec<&str> = HIDING_ACTIONS
                .iter()
                .copied()
                .filter(|a| match get(a) {
                    Some(v) => *a == "MoveToFolder" || is_true(v),
                    // Outlook's UpdateInboxRules lists actions inside a value.
                    None => op == "updateinboxrules" && raw.contains(a),
                })
                .collect();
            let conds: Vec<(&str, &str)> = SENDER_OR_WORDS
                .iter()
                .filter_map(|c| get(c).map(|v| (*c, v)))
                .collect();
            let cond_in_ops = op == "updateinboxrules"
                && ["From", "Subject", "Body", "Sender"]
                    .iter()
                    .any(|c| raw.contains(c));
            if !hides.is_empty() && (!conds.is_empty() || cond_in_ops) {
                let words = conds
                    .iter()
                    .map(|(_, v)| v.to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                let alarm = ALARM_WORDS.iter().find(|w| words.contains(*w));
                let sev = if alarm.is_some() {
                    Some(Severity::Critical)
                } else {
                    None
                };
                let rule_name = get("Name").unwrap_or("an inbox rule");
                let what = conds
                    .iter()
                    .map(|(c, v)| format!("{c} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                hits.push(hit(
                    CloudRule::M365InboxRule,
                    sev,
                    format!(
                        "{who} created {rule_name:?} ({name}) that does {} on mail matching {} from {ip}{}",
                        hides.join("+"),
                        if what.is_empty() { "sender or words" } else { &what },
                        alarm.map(|w| format!("; it hides mail about \"{w}\"")).unwrap_or_default()
                    ),
                ));
            }
            // Forwarding through an inbox rule.
            if let Some(to) = ["ForwardTo", "RedirectTo", "ForwardAsAttachmentTo"]
                .iter()
                .find_map(|k| get(k))
            {
                hits.push(hit(
                    CloudRule::M365MailboxAccess,
                    Some(Severity::High),
                    format!("{who} created an inbox rule forwarding mail to {to} from {ip}"),
                ));
            }
        }

        // Mailbox permissions and forwarding.
        let access = match op.as_str() {
            "add-mailboxpermission" => get("AccessRights").map(|r| {
                format!(
                    "gave {} {r} on mailbox {}",
                    get("User").unwrap_or("?"),
                    get("Identity").unwrap_or("?")
                )
            }),
            "add-recipientpermission" => Some(format!(
                "gave {} {} on {}",
                get("Trustee").unwrap_or("?"),
                get("AccessRights").unwrap_or("SendAs"),
                get("Identity").unwrap_or("?")
            )),
            "add-mailboxfolderpermission" | "set-mailboxfolderpermission" => Some(format!(
                "gave {} {} on folder {}",
                get("User").unwrap_or("?"),
                get("AccessRights").unwrap_or("?"),
                get("Identity").unwrap_or("?")
            )),
            "set-mailbox" => ["ForwardingSmtpAddress", "ForwardingAddress"]
                .iter()
                .find_map(|k| {
                    get(k).filter(|v| !v.is_empty()).map(|v| {
                        format!(
                            "forwarded mailbox {} to {v}",
                            get("Identity").unwrap_or("?")
                        )
                    })
                }),
            "new-transportrule" | "set-transportrule" => [
                "BlindCopyTo",
                "RedirectMessageTo",
                "AddToRecipients",
                "CopyTo",
            ]
            .iter()
            .find_map(|k| {
                get(k).map(|v| {
                    format!(
                        "created transport rule {:?} copying mail to {v}",
                        get("Name").unwrap_or("?")
                    )
                })
            }),
            _ => None,
        };
        if let Some(what) = access {
            let own = who.split_once('@').map(|(_, d)| d.to_ascii_lowercase());
            let external = own.is_some_and(|d| {
                what.split_whitespace().any(|w| {
                    w.rsplit_once('@').is_some_and(|(_, wd)| {
                        !wd.trim_end_matches(['.', ',']).eq_ignore_ascii_case(&d)
                    })
                })
            });
            hits.push(hit(
                CloudRule::M365MailboxAccess,
                external.then_some(Severity::High),
                format!(
                    "{who} {what} from {ip}{}",
                    if external {
                        " (outside its domain)"
                    } else {
                        ""
                    }
                ),
            ));
        }

        // Auditing turned off.
        let is_false =
            |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("false") || v == "0");
        let audit_off = match op.as_str() {
            "set-mailboxauditbypassassociation"
                if get("AuditBypassEnabled").is_some_and(is_true) =>
            {
                Some(format!(
                    "exempted {} from mailbox auditing (AuditBypassEnabled)",
                    get("Identity").unwrap_or("a mailbox")
                ))
            }
            "set-mailbox" if is_false("AuditEnabled") => Some(format!(
                "turned off mailbox auditing on {}",
                get("Identity").unwrap_or("a mailbox")
            )),
            "set-adminauditlogconfig" => {
                ["UnifiedAuditLogIngestionEnabled", "AdminAuditLogEnabled"]
                    .iter()
                    .find(|k| is_false(k))
                    .map(|k| format!("turned off the organisation's audit log ({k} False)"))
            }
            "set-organizationconfig" if get("AuditDisabled").is_some_and(is_true) => Some(
                "turned off mailbox auditing for the whole organisation (AuditDisabled)".into(),
            ),
            _ => None,
        };
        if let Some(what) = audit_off {
            hits.push(hit(
                CloudRule::M365AuditDisabled,
                None,
                format!("{who} {what} from {ip}"),
            ));
        }

        // Legacy mail protocols turned on for a mailbox.
        if matches!(op.as_str(), "set-casmailbox" | "set-casmailboxplan") {
            let on: Vec<&str> = LEGACY_PROTOCOLS
                .iter()
                .filter(|(k, _)| get(k).is_some_and(is_true))
                .map(|(_, p)| *p)
                .collect();
            if !on.is_empty() {
                hits.push(hit(
                    CloudRule::M365MailboxAccess,
                    Some(Severity::Low),
                    format!(
                        "{who} enabled {} on mailbox {} from {ip}; these protocols sign in with a password alone",
                        on.join(", "),
                        get("Identity").unwrap_or("?")
                    ),
                ));
            }
        }

        // Sending and company-wide sharing after a risky sign-in.
        let sending = matches!(op.as_str(), "send" | "sendas" | "sendonbehalf");
        let sharing = matches!(
            op.as_str(),
            "companylinkcreated"
                | "anonymouslinkcreated"
                | "sharingset"
                | "sharinginvitationcreated"
                | "securelinkcreated"
        ) && (op != "sharingset" && op != "sharinginvitationcreated" || {
            let r = ev.raw().to_ascii_lowercase();
            r.contains("everyone") || r.contains("all users")
        });
        if (sending || sharing)
            && let Some(&since) = self.risky.get(who)
            && t - since <= DAY_MS
        {
            let w = self.bursts.entry(Box::from(who)).or_default();
            w.push_back(t);
            while w.front().is_some_and(|&x| x < t - 10 * MINUTE_MS) || w.len() > 1024 {
                w.pop_front();
            }
            let n = w.len();
            if (sending && n >= 20) || sharing {
                hits.push(hit(
                    CloudRule::M365BurstAfterRiskySignIn,
                    None,
                    format!(
                        "{who} {} {:.1} h after a risky sign-in",
                        if sharing && !sending {
                            format!("shared a file company-wide or anonymously ({name}) from {ip}")
                        } else {
                            format!("sent {n} messages within 10 minutes")
                        },
                        (t - since) as f64 / HOUR_MS as f64
                    ),
                ));
            }
        }
    }

    /// Password sprays: failed sign-ins are kept per source address; when one
    /// address has failed for [`SPRAY_ACCOUNTS`] accounts that never passed from it
    /// within [`SPRAY_WINDOW_MS`] (and those are most of the accounts it tried), it
    /// sprayed. A sign-in from it in the next day, or one already in the window,
    /// is the spray working.
    fn spray(&mut self, ev: &Event, hits: &mut Vec<Hit>) {
        let Some(outcome) = sign_in_attempt(ev) else {
            return;
        };
        let ip = ev.source_ip();
        let who = ev.principal();
        if ip.is_empty() || who.is_empty() || who == "unknown" {
            return;
        }
        let t = ev.time_ms;
        let (spray_rule, after_rule) = if ev.provider() == Provider::Gcp {
            (CloudRule::GcpPasswordSpray, CloudRule::GcpSignInAfterSpray)
        } else {
            (
                CloudRule::EntraPasswordSpray,
                CloudRule::EntraSignInAfterSpray,
            )
        };
        if outcome != Outcome::Failure
            && let Some(s) = self.sprayed.get_mut(ip)
            && (s.at_ms - SPRAY_WINDOW_MS..=s.at_ms + DAY_MS).contains(&t)
            && !s.reported.iter().any(|r| &**r == who)
        {
            if s.reported.len() < MAX_SPRAYED_ACCOUNTS {
                s.reported.push(Box::from(who));
            }
            hits.push(after_spray(after_rule, who, ip, outcome, s, t));
        }
        // The address is copied only the first time it is seen (this runs on
        // every sign-in).
        if !self.attempts.contains_key(ip) {
            if self.attempts.len() >= MAX_TRACKED {
                return;
            }
            self.attempts.insert(Box::from(ip), VecDeque::new());
        }
        let Some(w) = self.attempts.get_mut(ip) else {
            return;
        };
        while w
            .front()
            .is_some_and(|a| a.at_ms < t - SPRAY_WINDOW_MS || w.len() >= MAX_ATTEMPTS)
        {
            w.pop_front();
        }
        w.push_back(Attempt {
            at_ms: t,
            account: Box::from(who),
            ok: outcome != Outcome::Failure,
        });
        if outcome != Outcome::Failure {
            return;
        }
        if let Some(s) = self.sprayed.get_mut(ip)
            && t - s.at_ms <= SPRAY_WINDOW_MS
        {
            // Reported already: the spray goes on.
            if s.accounts.len() < MAX_SPRAYED_ACCOUNTS && !s.accounts.iter().any(|a| &**a == who) {
                s.accounts.push(Box::from(who));
            }
            return;
        }
        let passed: std::collections::HashSet<&str> =
            w.iter().filter(|a| a.ok).map(|a| &*a.account).collect();
        let mut failed: Vec<&str> = w
            .iter()
            .filter(|a| !a.ok && !passed.contains(&*a.account))
            .map(|a| &*a.account)
            .collect();
        failed.sort_unstable();
        failed.dedup();
        if failed.len() < SPRAY_ACCOUNTS || failed.len() <= passed.len() {
            return;
        }
        let failures = w.iter().filter(|a| !a.ok).count();
        let first = w.front().map_or(t, |a| a.at_ms);
        let shown = failed
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        hits.push(hit(
            spray_rule,
            None,
            format!(
                "{ip} failed {failures} sign-ins for {} accounts within {:.0} min ({shown}{})",
                failed.len(),
                ((t - first) as f64 / MINUTE_MS as f64).ceil(),
                if failed.len() > 5 { ", …" } else { "" }
            ),
        ));
        let mut spray = Spray {
            at_ms: t,
            accounts: failed
                .iter()
                .chain(passed.iter())
                .take(MAX_SPRAYED_ACCOUNTS)
                .map(|a| Box::from(*a))
                .collect(),
            reported: Vec::new(),
        };
        // Accounts that passed from this address while it sprayed.
        let mut ok: Vec<(&str, i64)> = w
            .iter()
            .filter(|a| a.ok)
            .map(|a| (&*a.account, a.at_ms))
            .collect();
        ok.sort_unstable();
        ok.dedup_by_key(|(a, _)| *a);
        for (account, at) in ok {
            spray.reported.push(Box::from(account));
            hits.push(after_spray(
                after_rule,
                account,
                ip,
                Outcome::PasswordCorrect,
                &spray,
                at,
            ));
        }
        if self.sprayed.len() < MAX_TRACKED || self.sprayed.contains_key(ip) {
            self.sprayed.insert(Box::from(ip), spray);
        }
    }

    /// Forgets windows older than a week (credentials) or a day (risky sign-ins).
    fn prune(&mut self, now: i64) {
        if self.risky.len() + self.new_credentials.len() < 4096
            && self.bursts.len() < 4096
            && self.attempts.len() + self.sprayed.len() < 4096
        {
            return;
        }
        let mut m = std::mem::take(self).into_memory();
        m.forget_before(now);
        *self = CloudPlaybook::from_memory(m);
    }

    /// The playbook that continues from remembered state.
    pub fn from_memory(m: CloudMemory) -> CloudPlaybook {
        CloudPlaybook {
            new_credentials: m.new_credentials,
            risky: m.risky,
            bursts: m.bursts,
            attempts: m.attempts,
            sprayed: m.sprayed,
        }
    }

    /// What to remember for the next run.
    pub fn into_memory(self) -> CloudMemory {
        CloudMemory {
            new_credentials: self.new_credentials,
            risky: self.risky,
            bursts: self.bursts,
            attempts: self.attempts,
            sprayed: self.sprayed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn registry_and_data() {
        let ids: HashSet<_> = RULES.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), RULES.len());
        for (i, r) in CloudRule::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(
                r.info().id,
                format!("keytrail.{}.{}", r.provider().as_str(), r.def().id)
            );
        }
        let apps = &*OAUTH_APPS;
        assert!(apps.apps.len() >= 4);
        assert!(
            apps.apps
                .iter()
                .all(|a| !a.sources.is_empty() && a.app_id.len() == 36)
        );
    }

    #[test]
    fn outside_members() {
        assert!(outside_member("user:x@gmail.com", "admin@corp.com", "p"));
        assert!(!outside_member("user:y@corp.com", "admin@corp.com", "p"));
        assert!(outside_member("allUsers", "admin@corp.com", "p"));
        assert!(outside_member(
            "serviceAccount:a@other.iam.gserviceaccount.com",
            "admin@corp.com",
            "p"
        ));
        assert!(!outside_member(
            "serviceAccount:a@p.iam.gserviceaccount.com",
            "admin@corp.com",
            "p"
        ));
        assert!(!outside_member(
            "serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com",
            "admin@corp.com",
            "p"
        ));
    }
}
