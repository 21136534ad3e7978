//! Attacker-playbook detectors: known API sequences of credential abuse (logging
//! tampering, IAM persistence and privilege escalation, console pivots, SES and
//! Bedrock abuse, crypto-mining set-up, enumeration bursts, exfiltration by sharing,
//! instance-credential theft).
//!
//! Each detector is one variant of [`PlaybookRule`], the registry: its id, title,
//! severity, ATT&CK technique and window in [`PlaybookRule::def`], its logic a match arm
//! in [`Playbook::process`]. Detectors that need history (bursts, "never before") read
//! the per-identity [`crate::baseline::Baseline`] passed in.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock};

use keytrail_types::Severity;

use crate::alert::{AlertSource, Hit, RuleDef, RuleInfo};
use crate::baseline::{AccountState, Baseline};
use crate::event::{Event, IdentityKind, UaFamily};
use crate::time::{HOUR_MS, MINUTE_MS};

/// The playbook detectors, one rule each: their ids, titles, severities and ATT&CK
/// techniques are in [`PlaybookRule::def`], their logic in [`Playbook::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaybookRule {
    /// Audit logging stopped, deleted or narrowed (CloudTrail, flow logs, DNS query logs, Config).
    LoggingDisabled,
    /// Security monitoring disabled (GuardDuty, Security Hub, Organizations membership).
    SecurityServiceDisabled,
    /// IAM user created.
    UserCreated,
    /// Access key created for another IAM user.
    AccessKeyForOtherUser,
    /// Administrator policy attached or written.
    AdminPolicy,
    /// Console password created or changed for a user.
    LoginProfile,
    /// Role trust policy changed or backdoor role created.
    TrustPolicy,
    /// IAM Roles Anywhere trust anchor created.
    RolesAnywhere,
    /// Lambda function code, layers or resource policy changed.
    LambdaBackdoor,
    /// Federation token or console sign-in token minted (console pivot from a key).
    FederationPivot,
    /// Console login by an identity that only ever used access keys.
    ConsoleLoginKeyIdentity,
    /// Console login without MFA.
    ConsoleLoginNoMfa,
    /// SES sending-capability enumeration (spam resale reconnaissance).
    SesEnumeration,
    /// Bedrock model access enabled or models invoked by an unusual identity (LLM hijacking).
    BedrockAbuse,
    /// Enumeration burst with many access-denied errors.
    EnumerationBurst,
    /// Offensive tool user agent.
    AttackTool,
    /// Many or GPU instances launched, or instances in a region the account never used.
    MiningInstances,
    /// ECS cluster or task definition created by an identity that never used ECS.
    EcsSetup,
    /// Support case or service-quota increase requested.
    QuotaCase,
    /// EC2 instance-role credentials used from outside the instance.
    InstanceCredentialExfil,
    /// Many secrets or SecureString parameters read.
    SecretsBulkRead,
    /// EC2 Windows password data requested.
    PasswordData,
    /// EC2 user data read for many instances.
    UserDataRead,
    /// EC2 user data (startup script) modified.
    UserDataModified,
    /// SSM command or session on instances.
    RemoteCommand,
    /// SSH key pushed through EC2 Instance Connect or serial console.
    SshKeyPush,
    /// AMI, EBS or RDS snapshot shared with another account or made public.
    ShareExternal,
    /// Security group opened to the internet.
    OpenIngress,
}

impl PlaybookRule {
    /// Every rule, in the order of [`RULES`].
    pub const ALL: [PlaybookRule; 28] = [
        PlaybookRule::LoggingDisabled,
        PlaybookRule::SecurityServiceDisabled,
        PlaybookRule::UserCreated,
        PlaybookRule::AccessKeyForOtherUser,
        PlaybookRule::AdminPolicy,
        PlaybookRule::LoginProfile,
        PlaybookRule::TrustPolicy,
        PlaybookRule::RolesAnywhere,
        PlaybookRule::LambdaBackdoor,
        PlaybookRule::FederationPivot,
        PlaybookRule::ConsoleLoginKeyIdentity,
        PlaybookRule::ConsoleLoginNoMfa,
        PlaybookRule::SesEnumeration,
        PlaybookRule::BedrockAbuse,
        PlaybookRule::EnumerationBurst,
        PlaybookRule::AttackTool,
        PlaybookRule::MiningInstances,
        PlaybookRule::EcsSetup,
        PlaybookRule::QuotaCase,
        PlaybookRule::InstanceCredentialExfil,
        PlaybookRule::SecretsBulkRead,
        PlaybookRule::PasswordData,
        PlaybookRule::UserDataRead,
        PlaybookRule::UserDataModified,
        PlaybookRule::RemoteCommand,
        PlaybookRule::SshKeyPush,
        PlaybookRule::ShareExternal,
        PlaybookRule::OpenIngress,
    ];

    /// The rule's definition: id (after `keytrail.aws.`), title, severity,
    /// ATT&CK technique and tactic, aggregation window and engine.
    pub const fn def(self) -> RuleDef {
        match self {
            PlaybookRule::LoggingDisabled => RuleDef {
                id: "defense-evasion.logging-disabled",
                title: "Audit logging stopped, deleted or narrowed (CloudTrail, flow logs, DNS query logs, Config)",
                severity: Severity::High,
                technique: "T1562.008",
                tactic: "defense-evasion",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::SecurityServiceDisabled => RuleDef {
                id: "defense-evasion.security-service-disabled",
                title: "Security monitoring disabled (GuardDuty, Security Hub, Organizations membership)",
                severity: Severity::High,
                technique: "T1562.001",
                tactic: "defense-evasion",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::UserCreated => RuleDef {
                id: "persistence.iam-user-created",
                title: "IAM user created",
                severity: Severity::Medium,
                technique: "T1136.003",
                tactic: "persistence",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::AccessKeyForOtherUser => RuleDef {
                id: "persistence.access-key-for-other-user",
                title: "Access key created for another IAM user",
                severity: Severity::High,
                technique: "T1098.001",
                tactic: "persistence",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::AdminPolicy => RuleDef {
                id: "privilege-escalation.admin-policy",
                title: "Administrator policy attached or written",
                severity: Severity::High,
                technique: "T1098.003",
                tactic: "privilege-escalation",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::LoginProfile => RuleDef {
                id: "persistence.login-profile",
                title: "Console password created or changed for a user",
                severity: Severity::High,
                technique: "T1098",
                tactic: "persistence",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::TrustPolicy => RuleDef {
                id: "persistence.trust-policy-changed",
                title: "Role trust policy changed or backdoor role created",
                severity: Severity::High,
                technique: "T1098.003",
                tactic: "persistence",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::RolesAnywhere => RuleDef {
                id: "persistence.rolesanywhere-trust-anchor",
                title: "IAM Roles Anywhere trust anchor created",
                severity: Severity::High,
                technique: "T1098",
                tactic: "persistence",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::LambdaBackdoor => RuleDef {
                id: "persistence.lambda-modified",
                title: "Lambda function code, layers or resource policy changed",
                severity: Severity::Medium,
                technique: "T1648",
                tactic: "persistence",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::FederationPivot => RuleDef {
                id: "persistence.federation-token",
                title: "Federation token or console sign-in token minted (console pivot from a key)",
                severity: Severity::High,
                technique: "T1550.001",
                tactic: "lateral-movement",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::ConsoleLoginKeyIdentity => RuleDef {
                id: "initial-access.console-login-by-key-identity",
                title: "Console login by an identity that only ever used access keys",
                severity: Severity::High,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::ConsoleLoginNoMfa => RuleDef {
                id: "initial-access.console-login-without-mfa",
                title: "Console login without MFA",
                severity: Severity::Medium,
                technique: "T1078.004",
                tactic: "initial-access",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::SesEnumeration => RuleDef {
                id: "discovery.ses-enumeration",
                title: "SES sending-capability enumeration (spam resale reconnaissance)",
                severity: Severity::High,
                technique: "T1526",
                tactic: "discovery",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::BedrockAbuse => RuleDef {
                id: "impact.bedrock-abuse",
                title: "Bedrock model access enabled or models invoked by an unusual identity (LLM hijacking)",
                severity: Severity::High,
                technique: "T1496.004",
                tactic: "impact",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::EnumerationBurst => RuleDef {
                id: "discovery.enumeration-burst",
                title: "Enumeration burst with many access-denied errors",
                severity: Severity::Medium,
                technique: "T1580",
                tactic: "discovery",
                window_ms: 30 * MINUTE_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::AttackTool => RuleDef {
                id: "execution.attack-tool-user-agent",
                title: "Offensive tool user agent",
                severity: Severity::High,
                technique: "T1588.002",
                tactic: "execution",
                window_ms: 6 * HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::MiningInstances => RuleDef {
                id: "impact.crypto-mining-instances",
                title: "Many or GPU instances launched, or instances in a region the account never used",
                severity: Severity::High,
                technique: "T1496.001",
                tactic: "impact",
                window_ms: 6 * HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::EcsSetup => RuleDef {
                id: "impact.ecs-cluster-setup",
                title: "ECS cluster or task definition created by an identity that never used ECS",
                severity: Severity::Medium,
                technique: "T1496.001",
                tactic: "impact",
                window_ms: 6 * HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::QuotaCase => RuleDef {
                id: "impact.quota-increase-request",
                title: "Support case or service-quota increase requested",
                severity: Severity::Medium,
                technique: "T1496.001",
                tactic: "impact",
                window_ms: 6 * HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::InstanceCredentialExfil => RuleDef {
                id: "credential-access.instance-credentials-outside-ec2",
                title: "EC2 instance-role credentials used from outside the instance",
                severity: Severity::High,
                technique: "T1552.005",
                tactic: "credential-access",
                window_ms: 6 * HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::SecretsBulkRead => RuleDef {
                id: "credential-access.secrets-bulk-read",
                title: "Many secrets or SecureString parameters read",
                severity: Severity::High,
                technique: "T1555.006",
                tactic: "credential-access",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::PasswordData => RuleDef {
                id: "credential-access.ec2-get-password-data",
                title: "EC2 Windows password data requested",
                severity: Severity::Medium,
                technique: "T1552",
                tactic: "credential-access",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::UserDataRead => RuleDef {
                id: "discovery.ec2-user-data-read",
                title: "EC2 user data read for many instances",
                severity: Severity::Medium,
                technique: "T1552.005",
                tactic: "discovery",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::UserDataModified => RuleDef {
                id: "execution.ec2-user-data-modified",
                title: "EC2 user data (startup script) modified",
                severity: Severity::High,
                technique: "T1059.009",
                tactic: "execution",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::RemoteCommand => RuleDef {
                id: "execution.ssm-remote-command",
                title: "SSM command or session on instances",
                severity: Severity::Medium,
                technique: "T1651",
                tactic: "execution",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::SshKeyPush => RuleDef {
                id: "lateral-movement.ec2-ssh-key-push",
                title: "SSH key pushed through EC2 Instance Connect or serial console",
                severity: Severity::Medium,
                technique: "T1098.004",
                tactic: "lateral-movement",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::ShareExternal => RuleDef {
                id: "exfiltration.share-with-external-account",
                title: "AMI, EBS or RDS snapshot shared with another account or made public",
                severity: Severity::High,
                technique: "T1537",
                tactic: "exfiltration",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
            PlaybookRule::OpenIngress => RuleDef {
                id: "exfiltration.security-group-open-to-world",
                title: "Security group opened to the internet",
                severity: Severity::Medium,
                technique: "T1562.007",
                tactic: "defense-evasion",
                window_ms: HOUR_MS,
                source: AlertSource::Playbook,
            },
        }
    }

    /// The rule's metadata, shared by every alert it raises.
    pub fn info(self) -> &'static Arc<RuleInfo> {
        &RULES[self as usize]
    }
}

/// The metadata of every playbook detector, in [`PlaybookRule::ALL`] order.
pub static RULES: LazyLock<Vec<Arc<RuleInfo>>> = LazyLock::new(|| {
    PlaybookRule::ALL
        .iter()
        .map(|r| Arc::new(r.def().info()))
        .collect()
});

/// The metadata of one playbook rule.
pub fn rule(r: PlaybookRule) -> &'static Arc<RuleInfo> {
    r.info()
}

fn hit(r: PlaybookRule, explanation: String) -> Hit {
    Hit::new(rule(r), explanation)
}

const SES_RECON: &[&str] = &[
    "GetSendQuota",
    "ListIdentities",
    "GetAccountSendingEnabled",
    "ListServiceQuotas",
    "GetAccount",
    "ListEmailIdentities",
    "GetSendStatistics",
];
const GPU_FAMILIES: &[&str] = &[
    "p2.", "p3.", "p3dn.", "p4d.", "p4de.", "p5.", "p5e.", "g3.", "g3s.", "g4dn.", "g4ad.", "g5.",
    "g5g.", "g6.", "g6e.", "gr6.", "dl1.", "dl2q.", "trn1.", "inf1.", "inf2.", "vt1.",
];

#[derive(Default)]
struct Window {
    times: VecDeque<i64>,
}

impl Window {
    fn push(&mut self, t: i64, span: i64) -> usize {
        self.times.push_back(t);
        while self.times.front().is_some_and(|&x| x < t - span) {
            self.times.pop_front();
        }
        self.times.len()
    }
}

#[derive(Default)]
struct Burst {
    denied: Window,
    recon: Distinct,
    secrets: Distinct,
    user_data: Window,
    ses: Distinct,
    last_ms: i64,
}

/// A sliding window of values with a running count of each, so the number of
/// distinct values is known without rescanning the window.
#[derive(Default)]
struct Distinct {
    q: VecDeque<(i64, Arc<str>)>,
    counts: foldhash::HashMap<Arc<str>, u32>,
}

/// Adds `v` at `t` to the window, drops values older than `span` (and beyond `cap`
/// values), and returns the number of distinct values left.
fn distinct_in(w: &mut Distinct, t: i64, span: i64, v: &str, cap: usize) -> usize {
    let key: Arc<str> = match w.counts.get_key_value(v) {
        Some((k, _)) => k.clone(),
        None => Arc::from(v),
    };
    *w.counts.entry(key.clone()).or_default() += 1;
    w.q.push_back((t, key));
    while w.q.front().is_some_and(|(x, _)| *x < t - span) || w.q.len() > cap {
        if let Some((_, old)) = w.q.pop_front()
            && let Some(c) = w.counts.get_mut(&old)
        {
            *c -= 1;
            if *c == 0 {
                w.counts.remove(&old);
            }
        }
    }
    w.counts.len()
}

/// The burst windows of `who`, created on first use (no allocation when known).
fn burst_of<'a>(bursts: &'a mut foldhash::HashMap<Box<str>, Burst>, who: &str) -> &'a mut Burst {
    if !bursts.contains_key(who) {
        bursts.insert(Box::from(who), Burst::default());
    }
    bursts.get_mut(who).expect("inserted")
}

/// Per-run state of the playbook detectors (short windows per identity).
#[derive(Default)]
pub struct Playbook {
    bursts: foldhash::HashMap<Box<str>, Burst>,
}

fn req<'a>(ev: &'a Event, key: &str) -> Option<&'a serde_json::Value> {
    ev.lookup("requestParameters")?.get(key)
}

fn req_str<'a>(ev: &'a Event, key: &str) -> Option<&'a str> {
    req(ev, key)?.as_str()
}

fn caller_user_name(ev: &Event) -> Option<&str> {
    ev.arn()
        .and_then(|a| a.rsplit_once(":user/"))
        .map(|(_, n)| n.rsplit('/').next().unwrap_or(n))
}

fn policy_is_admin(doc: &str) -> bool {
    // Policy documents arrive URL-encoded or as JSON text; normalise and look for an
    // Allow of every action on every resource.
    let d: String = doc
        .replace("%22", "\"")
        .replace("%2A", "*")
        .replace("%3A", ":")
        .replace(char::is_whitespace, "");
    (d.contains("\"Action\":\"*\"")
        || d.contains("\"Action\":[\"*\"]")
        || d.contains("\"NotAction\""))
        && (d.contains("\"Resource\":\"*\"") || d.contains("\"Resource\":[\"*\"]"))
        && d.contains("\"Allow\"")
}

impl Playbook {
    /// Runs every playbook detector on `ev`. `base` is the identity's baseline before
    /// this event; `learning` says whether the identity is still in its learning period.
    pub fn process(
        &mut self,
        ev: &Event,
        base: Option<&Baseline>,
        account: &AccountState,
        hits: &mut Vec<Hit>,
    ) {
        let who = ev.principal();
        let name = ev.event_name();
        let svc = ev.service();
        let failed = ev.error_code().is_some();
        let ua = ev.ua_family;
        let ip = if ev.source_ip().is_empty() {
            "an unknown address"
        } else {
            ev.source_ip()
        };
        let ok = if failed { " (denied)" } else { "" };

        if ua == UaFamily::AttackTool {
            hits.push(hit(PlaybookRule::AttackTool, format!("{who} called {name} with the offensive-tool user agent \"{}\"; its baseline has no such client", ev.user_agent())));
        }

        match (svc, name) {
            (
                "cloudtrail",
                "StopLogging" | "DeleteTrail" | "PutEventSelectors" | "PutInsightSelectors",
            )
            | ("ec2", "DeleteFlowLogs")
            | (
                "route53resolver",
                "DeleteResolverQueryLogConfig" | "DisassociateResolverQueryLogConfig",
            )
            | (
                "config",
                "StopConfigurationRecorder"
                | "DeleteConfigurationRecorder"
                | "DeleteDeliveryChannel",
            )
            | ("logs", "DeleteLogGroup" | "DeleteLogStream")
                if !(svc == "logs" && failed) =>
            {
                hits.push(hit(PlaybookRule::LoggingDisabled, format!("{who} called {name} on {svc}{ok} from {ip}; audit logging is expected to stay on")));
            }
            ("cloudtrail", "UpdateTrail")
                if req(ev, "isMultiRegionTrail").and_then(|v| v.as_bool()) == Some(false) =>
            {
                hits.push(hit(
                    PlaybookRule::LoggingDisabled,
                    format!("{who} narrowed a trail to one region{ok}"),
                ));
            }
            (
                "guardduty",
                "DeleteDetector"
                | "DisassociateFromMasterAccount"
                | "DisassociateFromAdministratorAccount"
                | "DeleteMembers"
                | "StopMonitoringMembers"
                | "CreateFilter"
                | "CreateIPSet",
            )
            | ("securityhub", "DisableSecurityHub" | "BatchDisableStandards" | "DeleteInsight")
            | ("organizations", "LeaveOrganization")
            | ("access-analyzer", "DeleteAnalyzer") => {
                hits.push(hit(
                    PlaybookRule::SecurityServiceDisabled,
                    format!(
                        "{who} called {svc}:{name}{ok} from {ip}, weakening security monitoring"
                    ),
                ));
            }
            ("guardduty", "UpdateDetector")
                if req(ev, "enable").and_then(|v| v.as_bool()) == Some(false) =>
            {
                hits.push(hit(
                    PlaybookRule::SecurityServiceDisabled,
                    format!("{who} disabled a GuardDuty detector{ok}"),
                ));
            }
            ("iam", "CreateUser") => {
                let u = req_str(ev, "userName").unwrap_or("?");
                hits.push(hit(
                    PlaybookRule::UserCreated,
                    format!("{who} created IAM user {u}{ok} from {ip}"),
                ));
            }
            ("iam", "CreateAccessKey") => {
                let target = req_str(ev, "userName");
                let me = caller_user_name(ev);
                if let Some(t) = target
                    && me != Some(t)
                {
                    hits.push(hit(
                        PlaybookRule::AccessKeyForOtherUser,
                        format!("{who} created an access key for another user, {t}{ok}, from {ip}"),
                    ));
                }
            }
            ("iam", "AttachUserPolicy" | "AttachRolePolicy" | "AttachGroupPolicy") => {
                let p = req_str(ev, "policyArn").unwrap_or("");
                let pn = p.rsplit('/').next().unwrap_or("");
                if matches!(
                    pn,
                    "AdministratorAccess"
                        | "IAMFullAccess"
                        | "PowerUserAccess"
                        | "AWSOrganizationsFullAccess"
                ) {
                    let target = req_str(ev, "userName")
                        .or(req_str(ev, "roleName"))
                        .or(req_str(ev, "groupName"))
                        .unwrap_or("?");
                    hits.push(hit(
                        PlaybookRule::AdminPolicy,
                        format!("{who} attached {pn} to {target}{ok} from {ip}"),
                    ));
                }
            }
            (
                "iam",
                "PutUserPolicy"
                | "PutRolePolicy"
                | "PutGroupPolicy"
                | "CreatePolicyVersion"
                | "CreatePolicy",
            ) if req_str(ev, "policyDocument").is_some_and(policy_is_admin) => {
                hits.push(hit(
                    PlaybookRule::AdminPolicy,
                    format!(
                        "{who} wrote a policy allowing every action on every resource ({name}){ok}"
                    ),
                ));
            }
            ("iam", "CreateLoginProfile" | "UpdateLoginProfile") => {
                let t = req_str(ev, "userName").unwrap_or("?");
                hits.push(hit(
                    PlaybookRule::LoginProfile,
                    format!(
                        "{who} called {name} for user {t}{ok} from {ip}, giving it console access"
                    ),
                ));
            }
            ("iam", "UpdateAssumeRolePolicy") => {
                let r = req_str(ev, "roleName").unwrap_or("?");
                hits.push(hit(
                    PlaybookRule::TrustPolicy,
                    format!("{who} changed the trust policy of role {r}{ok} from {ip}"),
                ));
            }
            ("iam", "CreateRole") => {
                let doc = req_str(ev, "assumeRolePolicyDocument").unwrap_or("");
                let acct = ev.account_id().unwrap_or(ev.recipient_account());
                let foreign = doc.contains("arn:aws:iam::")
                    && !acct.is_empty()
                    && doc
                        .split("arn:aws:iam::")
                        .skip(1)
                        .any(|s| !s.starts_with(acct));
                if foreign || doc.contains("\"AWS\":\"*\"") {
                    let r = req_str(ev, "roleName").unwrap_or("?");
                    hits.push(hit(
                        PlaybookRule::TrustPolicy,
                        format!(
                            "{who} created role {r} trusting a principal outside account {acct}{ok}"
                        ),
                    ));
                }
            }
            ("rolesanywhere", "CreateTrustAnchor" | "CreateProfile") => {
                hits.push(hit(PlaybookRule::RolesAnywhere, format!("{who} called rolesanywhere:{name}{ok}; certificates from this anchor can assume roles")));
            }
            ("lambda", n)
                if n.starts_with("AddPermission")
                    || n.starts_with("UpdateFunctionCode")
                    || n.starts_with("UpdateFunctionConfiguration")
                    || n.starts_with("CreateFunctionUrlConfig") =>
            {
                let novel = base.is_none_or(|b| !b.has_api(name));
                if novel {
                    hits.push(hit(
                        PlaybookRule::LambdaBackdoor,
                        format!("{who} called {name}{ok}, which it never called before"),
                    ));
                }
            }
            ("sts", "GetFederationToken") => {
                hits.push(hit(PlaybookRule::FederationPivot, format!("{who} minted a federation token{ok} from {ip}; federation tokens turn a leaked key into console access")));
            }
            ("signin", "GetSigninToken") => {
                hits.push(hit(
                    PlaybookRule::FederationPivot,
                    format!("{who} requested a console sign-in token{ok} from {ip}"),
                ));
            }
            ("signin", "ConsoleLogin") => {
                let mfa_no = ev.lookup_str("additionalEventData.MFAUsed") == Some("No");
                let kind = ev.identity_kind();
                if kind == Some(IdentityKind::FederatedUser)
                    || base.is_some_and(|b| b.machine_only())
                {
                    let events = base.map_or(0, |b| b.events);
                    hits.push(hit(PlaybookRule::ConsoleLoginKeyIdentity, format!("{who} logged in to the console from {ip}; its {events} earlier events were all programmatic key use")));
                } else if mfa_no && kind == Some(IdentityKind::IamUser) && !failed {
                    hits.push(hit(
                        PlaybookRule::ConsoleLoginNoMfa,
                        format!("{who} logged in to the console without MFA from {ip}"),
                    ));
                }
            }
            ("ses" | "servicequotas" | "sesv2", n) if SES_RECON.contains(&n) => {
                if svc == "servicequotas"
                    && req_str(ev, "ServiceCode")
                        .or(req_str(ev, "serviceCode"))
                        .is_some_and(|c| c != "ses")
                {
                    // Quota listing for other services is routine.
                } else {
                    let b = burst_of(&mut self.bursts, who);
                    let n_distinct = distinct_in(&mut b.ses, ev.time_ms, HOUR_MS, name, 64);
                    let knows_ses = base.is_some_and(|b| b.has_service("ses"));
                    if n_distinct >= 2 && !knows_ses {
                        hits.push(hit(PlaybookRule::SesEnumeration, format!("{who} called {n_distinct} distinct SES capability APIs within an hour (latest {name}); it never used SES before")));
                    }
                }
            }
            ("bedrock", n) => {
                let setup = matches!(
                    n,
                    "PutFoundationModelEntitlement"
                        | "PutUseCaseForModelAccess"
                        | "CreateFoundationModelAgreement"
                        | "DeleteModelInvocationLoggingConfiguration"
                );
                let invoke = n.starts_with("Invoke") || n == "Converse" || n == "ConverseStream";
                let recon = matches!(
                    n,
                    "GetFoundationModelAvailability"
                        | "ListFoundationModelAgreementOffers"
                        | "ListFoundationModels"
                        | "GetModelInvocationLoggingConfiguration"
                );
                let knows = base.is_some_and(|b| b.has_service("bedrock"));
                if setup || ((invoke || recon) && !knows) {
                    let what = if setup {
                        "enabled model access"
                    } else if invoke {
                        "invoked a model"
                    } else {
                        "probed model availability"
                    };
                    hits.push(hit(
                        PlaybookRule::BedrockAbuse,
                        format!(
                            "{who} {what} ({name}{ok}) from {ip}; its baseline has no Bedrock use"
                        ),
                    ));
                }
            }
            ("ec2", "RunInstances") => {
                let itype = req_str(ev, "instanceType").unwrap_or("");
                let count = req(ev, "instancesSet")
                    .and_then(|s| s.get("items"))
                    .and_then(|i| i.as_array())
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i.get("maxCount").and_then(|c| c.as_u64()))
                            .sum::<u64>()
                    })
                    .unwrap_or(1);
                let gpu = GPU_FAMILIES.iter().any(|f| itype.starts_with(f));
                let new_region = account.learned(ev) && !account.region_used(ev);
                if gpu || count >= 10 || new_region {
                    let mut why = Vec::new();
                    if gpu {
                        why.push(format!("GPU type {itype}"));
                    }
                    if count >= 10 {
                        why.push(format!("{count} instances"));
                    }
                    if new_region {
                        why.push(format!(
                            "region {} that the account never used",
                            ev.region()
                        ));
                    }
                    hits.push(hit(
                        PlaybookRule::MiningInstances,
                        format!(
                            "{who} launched {}{ok}; normal launches are CPU types in used regions",
                            why.join(", ")
                        ),
                    ));
                }
            }
            ("ecs", "CreateCluster" | "RegisterTaskDefinition")
                if base.is_none_or(|b| !b.has_service("ecs")) =>
            {
                hits.push(hit(
                    PlaybookRule::EcsSetup,
                    format!(
                        "{who} called ecs:{name}{ok} in {}; it never used ECS before",
                        ev.region()
                    ),
                ));
            }
            ("support", "CreateCase") | ("servicequotas", "RequestServiceQuotaIncrease") => {
                hits.push(hit(PlaybookRule::QuotaCase, format!("{who} called {svc}:{name}{ok}; quota increases precede mining on stolen accounts")));
            }
            ("secretsmanager", "GetSecretValue" | "BatchGetSecretValue")
            | ("ssm", "GetParameter" | "GetParameters" | "GetParametersByPath") => {
                let id = req_str(ev, "secretId")
                    .map(String::from)
                    .or_else(|| req(ev, "names").map(|v| v.to_string()))
                    .or_else(|| req_str(ev, "name").map(String::from))
                    .or_else(|| req(ev, "filters").map(|v| v.to_string()))
                    .unwrap_or_else(|| ev.event_id().to_string());
                let batch = name == "BatchGetSecretValue" || name == "GetParametersByPath";
                let b = burst_of(&mut self.bursts, who);
                let n = distinct_in(&mut b.secrets, ev.time_ms, 10 * MINUTE_MS, &id, 256);
                let decrypt = svc != "ssm"
                    || req(ev, "withDecryption").and_then(|v| v.as_bool()) == Some(true);
                let usual = base.is_some_and(|b| b.api_count(name) > 50);
                if decrypt && !usual && (n >= 5 || batch) {
                    hits.push(hit(PlaybookRule::SecretsBulkRead, format!("{who} read {n} distinct secrets within 10 minutes ({name}); it rarely reads secrets")));
                }
            }
            ("ec2", "GetPasswordData") => {
                hits.push(hit(
                    PlaybookRule::PasswordData,
                    format!("{who} requested Windows password data{ok} from {ip}"),
                ));
            }
            ("ec2", "DescribeInstanceAttribute")
                if req_str(ev, "attribute") == Some("userData") =>
            {
                let b = burst_of(&mut self.bursts, who);
                if b.user_data.push(ev.time_ms, 10 * MINUTE_MS) >= 5 {
                    hits.push(hit(PlaybookRule::UserDataRead, format!("{who} read EC2 user data of many instances within 10 minutes (secrets often live there)")));
                }
            }
            ("ec2", "ModifyInstanceAttribute") if req(ev, "userData").is_some() => {
                hits.push(hit(
                    PlaybookRule::UserDataModified,
                    format!("{who} replaced an instance startup script{ok} from {ip}"),
                ));
            }
            ("ssm", "SendCommand" | "StartSession") if base.is_none_or(|b| !b.has_api(name)) => {
                hits.push(hit(
                    PlaybookRule::RemoteCommand,
                    format!("{who} ran ssm:{name}{ok} on instances; it never did before"),
                ));
            }
            ("ec2-instance-connect", "SendSSHPublicKey" | "SendSerialConsoleSSHPublicKey")
            | ("ec2", "EnableSerialConsoleAccess")
                if base.is_none_or(|b| !b.has_api(name)) =>
            {
                hits.push(hit(
                    PlaybookRule::SshKeyPush,
                    format!("{who} called {name}{ok} from {ip}; it never did before"),
                ));
            }
            ("ec2", "ModifyImageAttribute" | "ModifySnapshotAttribute")
            | ("rds", "ModifyDBSnapshotAttribute" | "ModifyDBClusterSnapshotAttribute") => {
                let raw = ev
                    .lookup("requestParameters")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let add = raw.contains("\"add\"")
                    || raw.contains("valuesToAdd")
                    || raw.contains("\"Add\"");
                if add {
                    hits.push(hit(
                        PlaybookRule::ShareExternal,
                        format!(
                            "{who} shared a snapshot or image with another account ({name}){ok}"
                        ),
                    ));
                }
            }
            ("ec2", "AuthorizeSecurityGroupIngress") => {
                let raw = ev
                    .lookup("requestParameters")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                if raw.contains("/0\"") {
                    hits.push(hit(
                        PlaybookRule::OpenIngress,
                        format!("{who} opened a security group to the internet{ok}"),
                    ));
                }
            }
            _ => {}
        }

        // Instance-profile credentials used outside their instance.
        if ev.identity().ec2_instance_session() && ev.source_addr.is_some() {
            let from_desktop = ua.interactive() || ua == UaFamily::AwsCliDesktop;
            let foreign_net =
                base.is_some_and(|b| b.learned_networks() && !b.knows_network(ev.source_ip()));
            if from_desktop || foreign_net {
                let why = if from_desktop {
                    format!("a client of family {} ({})", ua.as_str(), ev.user_agent())
                } else {
                    "a network the role never used".to_string()
                };
                hits.push(hit(PlaybookRule::InstanceCredentialExfil, format!("instance credentials of {} (session {}) were used from {ip} by {why}; instance roles normally call from their instance", who, ev.identity().session_name.unwrap_or("?"))));
            }
        }

        // Enumeration bursts: many denied calls, or many distinct read APIs across services.
        let b = burst_of(&mut self.bursts, who);
        b.last_ms = ev.time_ms;
        if ev.access_denied() {
            let n = b.denied.push(ev.time_ms, 10 * MINUTE_MS);
            if n >= 10 {
                hits.push(hit(PlaybookRule::EnumerationBurst, format!("{who} got {n} access-denied errors within 10 minutes (latest {name}); it normally has none")));
            }
        }
        let recon =
            name.starts_with("List") || name.starts_with("Describe") || name.starts_with("Get");
        if recon && ua != UaFamily::Console && ua != UaFamily::AwsService {
            let key = format!("{svc}:{name}");
            let n = distinct_in(&mut b.recon, ev.time_ms, 10 * MINUTE_MS, &key, 512);
            let known = base.is_some_and(|b| b.has_api(name));
            if n >= 40 && !known {
                hits.push(hit(PlaybookRule::EnumerationBurst, format!("{who} called {n} distinct list/describe/get APIs within 10 minutes; its baseline is far narrower")));
            }
        }
    }

    /// Forgets windows idle since before `watermark_ms - 1h`.
    pub fn prune(&mut self, watermark_ms: i64) {
        self.bursts
            .retain(|_, b| b.last_ms + HOUR_MS >= watermark_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn admin_policy_documents() {
        assert!(policy_is_admin(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        ));
        assert!(policy_is_admin(
            "{\n \"Statement\": [{\"Effect\": \"Allow\", \"Action\": [\"*\"], \"Resource\": \"*\"}]}"
        ));
        assert!(!policy_is_admin(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
        ));
    }

    #[test]
    fn rule_ids_are_unique_and_namespaced() {
        let ids: HashSet<_> = RULES.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), RULES.len());
        assert!(
            RULES
                .iter()
                .all(|r| r.id.starts_with("keytrail.aws.") && r.technique.starts_with('T'))
        );
    }

    #[test]
    fn the_registry_lists_every_rule_in_order() {
        for (i, r) in PlaybookRule::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
            assert_eq!(r.info().id, format!("keytrail.aws.{}", r.def().id));
            assert_eq!(r.info().source, AlertSource::Playbook);
        }
        assert_eq!(RULES.len(), PlaybookRule::ALL.len());
    }
}
