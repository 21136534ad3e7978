//! Client families from user agents ([`UaFamily`]), classified by the ordered rules of
//! `data/user-agents.yml` (embedded), through a per-thread cache.

/// Family of the client software that made a call, from its user agent.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum UaFamily {
    /// A web browser (`Mozilla/5.0 …`).
    Browser,
    /// The AWS console (`console.*.amazonaws.com`, `AWS Internal` behind the console).
    Console,
    /// AWS CLI on a server OS.
    AwsCli,
    /// AWS CLI on a desktop OS (macOS, Windows).
    AwsCliDesktop,
    /// A Python SDK (boto3/botocore).
    SdkPython,
    /// The Go SDK.
    SdkGo,
    /// The Java SDK.
    SdkJava,
    /// The JavaScript SDK.
    SdkJs,
    /// Another AWS SDK (.NET, Ruby, PHP, Rust, C++).
    SdkOther,
    /// Terraform, Pulumi, CloudFormation, CDK.
    Iac,
    /// An AWS service calling on a principal's behalf.
    AwsService,
    /// curl, wget, Postman, HTTPie: hand-made requests.
    HttpTool,
    /// Desktop S3/cloud tools (S3 Browser, Cyberduck, CloudBerry).
    DesktopTool,
    /// Offensive tooling (Pacu, TruffleHog, Stratus Red Team, Kali/Parrot hosts, ScoutSuite…).
    AttackTool,
    /// Empty user agent.
    Empty,
    /// Anything else.
    Other,
}

impl UaFamily {
    /// Classifies a user-agent string by the rules of `data/user-agents.yml`.
    pub fn classify(ua: &str) -> Self {
        if ua.is_empty() {
            return Self::Empty;
        }
        let lower_owned;
        let l: &str = if ua.bytes().any(|b| b.is_ascii_uppercase()) {
            lower_owned = ua.to_ascii_lowercase();
            &lower_owned
        } else {
            ua
        };
        UA_RULES
            .iter()
            .find(|r| r.matches(l))
            .map_or(Self::Other, |r| r.family)
    }

    /// Whether this family is used by people at a keyboard rather than by a server process.
    pub fn interactive(self) -> bool {
        matches!(
            self,
            Self::Browser
                | Self::Console
                | Self::AwsCliDesktop
                | Self::HttpTool
                | Self::DesktopTool
                | Self::AttackTool
        )
    }

    /// Snake-case name used in explanations and state files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Console => "console",
            Self::AwsCli => "aws_cli",
            Self::AwsCliDesktop => "aws_cli_desktop",
            Self::SdkPython => "sdk_python",
            Self::SdkGo => "sdk_go",
            Self::SdkJava => "sdk_java",
            Self::SdkJs => "sdk_js",
            Self::SdkOther => "sdk_other",
            Self::Iac => "iac",
            Self::AwsService => "aws_service",
            Self::HttpTool => "http_tool",
            Self::DesktopTool => "desktop_tool",
            Self::AttackTool => "attack_tool",
            Self::Empty => "empty",
            Self::Other => "other",
        }
    }
}

/// One rule of `data/user-agents.yml`: the family of the user agents it matches.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UaRule {
    pub(super) family: UaFamily,
    #[serde(default)]
    pub(super) equals: Vec<String>,
    #[serde(default)]
    pub(super) starts_with: Vec<String>,
    #[serde(default)]
    pub(super) ends_with: Vec<String>,
    #[serde(default)]
    pub(super) contains: Vec<String>,
    #[serde(default)]
    pub(super) and_contains: Vec<String>,
}

impl UaRule {
    /// Whether the rule matches `l`, a lowercased user agent.
    pub(super) fn matches(&self, l: &str) -> bool {
        let any = self.equals.iter().any(|p| l == p)
            || self.starts_with.iter().any(|p| l.starts_with(p.as_str()))
            || self.ends_with.iter().any(|p| l.ends_with(p.as_str()))
            || self.contains.iter().any(|p| l.contains(p.as_str()));
        any && (self.and_contains.is_empty()
            || self.and_contains.iter().any(|p| l.contains(p.as_str())))
    }
}

/// The user-agent families, as data (`data/user-agents.yml`, embedded).
pub(super) static UA_RULES: std::sync::LazyLock<Vec<UaRule>> = std::sync::LazyLock::new(|| {
    serde_yaml_ng::from_str(include_str!("../../data/user-agents.yml"))
        .expect("data/user-agents.yml is valid (checked by a test)")
});

/// [`UaFamily::classify`] through a per-thread cache (user agents repeat heavily).
pub(super) fn classify_cached(ua: &str) -> UaFamily {
    thread_local! {
        static CACHE: std::cell::RefCell<foldhash::HashMap<Box<str>, UaFamily>> =
            Default::default();
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(f) = c.get(ua) {
            return *f;
        }
        let f = UaFamily::classify(ua);
        if c.len() >= 4096 {
            c.clear();
        }
        c.insert(Box::from(ua), f);
        f
    })
}
