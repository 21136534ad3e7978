//! IAM policy documents: parsing (objects, JSON strings and URL-encoded
//! strings as returned by the raw IAM API) and the evaluation questions the
//! posture checks ask ("does this principal allow `ssm:SendCommand` on every
//! instance?").
//!
//! Evaluation follows IAM's rules where they matter for posture: an explicit
//! `Deny` wins over any `Allow`; `Action`/`NotAction` and `Resource`/
//! `NotResource` take `*` and `?` wildcards and action names compare
//! case-insensitively. Two simplifications are deliberate and documented in
//! docs/posture-checks.md: an `Allow` with a `Condition` still counts as an
//! allow (conditions are usually not a security boundary for the identity
//! itself), while a `Deny` with a `Condition` is not counted as a deny (it
//! only denies sometimes). Permission boundaries and SCPs are not applied.

use serde_json::Value;

/// Whether a statement allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `"Effect": "Allow"`.
    Allow,
    /// `"Effect": "Deny"`.
    Deny,
}

/// `Action` or `NotAction`, with lowercased patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionSpec {
    /// The statement applies to actions matching one of these patterns.
    Action(Vec<String>),
    /// The statement applies to every action matching none of these patterns.
    NotAction(Vec<String>),
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceSpec {
    /// The statement applies to resources matching one of these patterns.
    Resource(Vec<String>),
    /// The statement applies to every resource matching none of these patterns.
    NotResource(Vec<String>),
}

/// One condition entry: operator, key, values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Operator as written (`StringEquals`, `ForAnyValue:StringLike` ...).
    pub operator: String,
    /// Condition key as written (`sts:ExternalId`).
    pub key: String,
    /// Values, stringified.
    pub values: Vec<String>,
}

/// `Principal` / `NotPrincipal` of a resource or trust policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principals {
    /// `"Principal": "*"` or `{"AWS": "*"}`.
    pub any: bool,
    /// `AWS` principals (account ids, ARNs).
    pub aws: Vec<String>,
    /// `Service` principals (`ec2.amazonaws.com`).
    pub service: Vec<String>,
    /// `Federated` principals.
    pub federated: Vec<String>,
    /// `CanonicalUser` principals.
    pub canonical_user: Vec<String>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `Sid`, if any.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// Actions the statement applies to.
    pub actions: ActionSpec,
    /// Resources the statement applies to (`*` when absent, as in trust policies).
    pub resources: ResourceSpec,
    /// `Principal`, for resource and trust policies.
    pub principal: Option<Principals>,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyDocument {
    /// Statements in document order.
    pub statements: Vec<Statement>,
}

/// Decodes `%XX` escapes (the IAM API returns policy documents URL-encoded).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl PolicyDocument {
    /// Parses a policy document given as a JSON object, a JSON string, or a
    /// URL-encoded JSON string.
    pub fn from_value(value: &Value) -> Result<PolicyDocument, String> {
        match value {
            Value::Object(_) => Self::from_object(value),
            Value::String(s) => Self::from_text(s),
            other => Err(format!("policy document is a {}", json_kind(other))),
        }
    }

    /// Parses a policy document from text (plain or URL-encoded JSON).
    pub fn from_text(text: &str) -> Result<PolicyDocument, String> {
        let trimmed = text.trim_start();
        let decoded;
        let json = if trimmed.starts_with('{') {
            text
        } else {
            decoded = percent_decode(text);
            &decoded
        };
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("policy document is not JSON: {e}"))?;
        Self::from_object(&value)
    }

    fn from_object(value: &Value) -> Result<PolicyDocument, String> {
        let obj = value
            .as_object()
            .ok_or_else(|| format!("policy document is a {}", json_kind(value)))?;
        let raw = get_ci(obj, "Statement").ok_or("policy document has no Statement")?;
        let list: Vec<&Value> = match raw {
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![raw],
            other => return Err(format!("Statement is a {}", json_kind(other))),
        };
        let mut statements = Vec::with_capacity(list.len());
        for (i, st) in list.into_iter().enumerate() {
            statements
                .push(Statement::from_value(st).map_err(|e| format!("statement {}: {e}", i + 1))?);
        }
        Ok(PolicyDocument { statements })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Case-insensitive key lookup (IAM element names are case-sensitive in
/// theory, but hand-written documents in the wild vary).
fn get_ci<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
            .collect(),
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

impl Principals {
    fn from_value(v: &Value) -> Principals {
        let mut p = Principals::default();
        match v {
            Value::String(s) if s == "*" => p.any = true,
            Value::String(s) => p.aws.push(s.clone()),
            Value::Object(map) => {
                for (k, val) in map {
                    let list = string_list(val);
                    match k.to_ascii_lowercase().as_str() {
                        "aws" => {
                            if list.iter().any(|s| s == "*") {
                                p.any = true;
                            }
                            p.aws.extend(list.into_iter().filter(|s| s != "*"));
                        }
                        "service" => p.service.extend(list),
                        "federated" => p.federated.extend(list),
                        "canonicaluser" => p.canonical_user.extend(list),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        p
    }
}

impl Statement {
    fn from_value(v: &Value) -> Result<Statement, String> {
        let obj = v.as_object().ok_or("statement is not an object")?;
        let effect = match get_ci(obj, "Effect").and_then(Value::as_str) {
            Some(e) if e.eq_ignore_ascii_case("allow") => Effect::Allow,
            Some(e) if e.eq_ignore_ascii_case("deny") => Effect::Deny,
            Some(e) => return Err(format!("unknown Effect `{e}`")),
            None => return Err("statement has no Effect".into()),
        };
        let lower = |v: &Value| -> Vec<String> {
            string_list(v)
                .into_iter()
                .map(|s| s.to_ascii_lowercase())
                .collect()
        };
        let actions = if let Some(a) = get_ci(obj, "Action") {
            ActionSpec::Action(lower(a))
        } else if let Some(a) = get_ci(obj, "NotAction") {
            ActionSpec::NotAction(lower(a))
        } else {
            return Err("statement has neither Action nor NotAction".into());
        };
        let resources = if let Some(r) = get_ci(obj, "Resource") {
            ResourceSpec::Resource(string_list(r))
        } else if let Some(r) = get_ci(obj, "NotResource") {
            ResourceSpec::NotResource(string_list(r))
        } else {
            ResourceSpec::Resource(vec!["*".into()])
        };
        let principal = get_ci(obj, "Principal").map(Principals::from_value);
        let mut conditions = Vec::new();
        if let Some(Value::Object(ops)) = get_ci(obj, "Condition") {
            for (op, keys) in ops {
                if let Value::Object(keys) = keys {
                    for (key, vals) in keys {
                        conditions.push(Condition {
                            operator: op.clone(),
                            key: key.clone(),
                            values: string_list(vals),
                        });
                    }
                }
            }
        }
        Ok(Statement {
            sid: get_ci(obj, "Sid")
                .and_then(Value::as_str)
                .map(str::to_string),
            effect,
            actions,
            resources,
            principal,
            conditions,
        })
    }

    /// Whether the statement's actions include `action` (lowercase `service:name`).
    pub fn matches_action(&self, action: &str) -> bool {
        match &self.actions {
            ActionSpec::Action(p) => p.iter().any(|p| wildcard_match(p, action)),
            ActionSpec::NotAction(p) => !p.iter().any(|p| wildcard_match(p, action)),
        }
    }

    /// Whether the statement's resources cover every resource described by
    /// `target` (a pattern such as `*` or `arn:aws:s3:::*/*`). See [`covers`].
    pub fn covers_resource(&self, target: &str) -> bool {
        match &self.resources {
            ResourceSpec::Resource(p) => p.iter().any(|p| covers(p, target)),
            // A NotResource statement covers the target unless an exclusion
            // could overlap it: be strict and require no exclusion to match.
            ResourceSpec::NotResource(p) => !p.iter().any(|p| {
                wildcard_match(&p.to_ascii_lowercase(), &target.to_ascii_lowercase())
                    || wildcard_match(&target.to_ascii_lowercase(), &p.to_ascii_lowercase())
            }),
        }
    }

    /// Whether the statement's resources include at least one wildcarded
    /// pattern (a "broad" grant, as opposed to one named resource).
    pub fn has_broad_resource(&self) -> bool {
        match &self.resources {
            ResourceSpec::Resource(p) => p.iter().any(|p| p.contains('*')),
            ResourceSpec::NotResource(_) => true,
        }
    }

    /// Whether the statement grants on every resource (`Resource: "*"`).
    pub fn all_resources(&self) -> bool {
        self.covers_resource("*")
    }
}

/// Glob match with `*` (any run) and `?` (one char), ASCII case-insensitive.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether resource pattern `pattern` covers every resource that `target`
/// describes. `target` is itself a pattern; it is matched literally, so
/// `arn:aws:s3:::*` covers `arn:aws:s3:::*/*`'s bucket part only if it
/// matches that text. For ARNs the region and account fields of `pattern`
/// are not compared: a snapshot describes one account, and a grant on every
/// instance of one region is still a grant on a whole fleet.
pub fn covers(pattern: &str, target: &str) -> bool {
    if pattern == "*" || wildcard_match(pattern, target) {
        return true;
    }
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let t: Vec<&str> = target.splitn(6, ':').collect();
    if p.len() == 6 && t.len() == 6 && p[0] == "arn" && t[0] == "arn" {
        return wildcard_match(p[1], t[1])
            && wildcard_match(p[2], t[2])
            && wildcard_match(p[5], t[5]);
    }
    false
}

/// Whether a statement's conditions mention `key` (case-insensitive), e.g.
/// `sts:ExternalId`, under any operator except a `Null` test.
pub fn has_condition_key(st: &Statement, key: &str) -> bool {
    st.conditions
        .iter()
        .any(|c| c.key.eq_ignore_ascii_case(key) && !c.operator.eq_ignore_ascii_case("Null"))
}

/// Read-only verbs: an action whose name starts with one of these does not
/// change anything.
const READ_VERBS: &[&str] = &[
    "get",
    "list",
    "describe",
    "batchget",
    "query",
    "scan",
    "search",
    "lookup",
    "view",
    "select",
    "check",
    "head",
    "preview",
    "estimate",
    "simulate",
    "validate",
    "verify",
    "test",
    "export",
    "download",
    "filter",
    "retrieve",
    "detect",
    "read",
    "batchdescribe",
    "batchcheck",
    "batchdetect",
    "adminget",
    "adminlist",
    "count",
    "discover",
];

/// Service-specific wildcards whose every action is a read although the
/// prefix is not a read verb. Each appears in AWS's own `ReadOnlyAccess` or
/// `SecurityAudit`, whose published documents must read as read-only:
/// Athena's and CodeDeploy's `Batch*` are all `BatchGet…`; Config's
/// `Deliver*` is DeliverConfigSnapshot (a report to the delivery channel);
/// IAM's `Generate*` are the credential, service-last-accessed and
/// organizations access reports; Elastic Beanstalk's `Request*` is
/// RequestEnvironmentInfo; Comprehend's `Classify*`/`Contains*` analyse
/// text; Lightsail's `Is*` is IsVpcPeered; SQS's `Receive*` is
/// ReceiveMessage (a data read). (`dynamodb:Batch*` includes BatchWriteItem
/// and stays a write.)
const READ_ONLY_WILDCARDS: &[&str] = &[
    "athena:batch*",
    "codedeploy:batch*",
    "config:deliver*",
    "iam:generate*",
    "elasticbeanstalk:request*",
    "comprehend:classify*",
    "comprehend:contains*",
    "lightsail:is*",
    "sqs:receive*",
];

/// Whether an action pattern (lowercase) can only match read-only actions.
pub fn is_read_only_pattern(pattern: &str) -> bool {
    if READ_ONLY_WILDCARDS.contains(&pattern) {
        return true;
    }
    let Some((_, name)) = pattern.split_once(':') else {
        return false;
    };
    if name.is_empty() || name.starts_with('*') || name.starts_with('?') {
        return false;
    }
    READ_VERBS.iter().any(|v| {
        name.starts_with(v)
            // `get*` is read-only, `g*` is not: the verb must be complete
            // before any wildcard.
            && !name[..v.len()].contains(['*', '?'])
    })
}

/// Whether an action pattern (lowercase) grants write access to a whole
/// service or everything (`*`, `s3:*`, `ec2:*Instance*`, `iam:Put*`).
pub fn is_broad_write_pattern(pattern: &str) -> bool {
    pattern.contains('*') && !is_read_only_pattern(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_specific_read_only_wildcards() {
        // Every wildcard of AWS's published SecurityAudit and ReadOnlyAccess
        // documents (2025) that a verb list alone would take for a write.
        for p in [
            "codedeploy:batch*",
            "config:deliver*",
            "cognito-idp:adminget*",
            "cognito-idp:adminlist*",
            "comprehend:batchdetect*",
            "comprehend:classify*",
            "comprehend:contains*",
            "ecr:batchcheck*",
            "elasticbeanstalk:request*",
            "iam:generate*",
            "kinesisanalytics:discover*",
            "lightsail:is*",
            "robomaker:batchdescribe*",
            "sqs:receive*",
            "swf:count*",
        ] {
            assert!(is_read_only_pattern(p), "{p}");
            assert!(!is_broad_write_pattern(p), "{p}");
        }
        for p in [
            "cognito-idp:admin*",
            "sqs:*",
            "iam:*",
            "lightsail:i*",
            "codedeploy:b*",
        ] {
            assert!(is_broad_write_pattern(p), "{p}");
        }
        assert!(is_read_only_pattern("athena:batch*"));
        assert!(!is_broad_write_pattern("athena:batch*"));
        assert!(!is_read_only_pattern("dynamodb:batch*"));
        assert!(is_broad_write_pattern("dynamodb:batch*"));
    }

    #[test]
    fn wildcards_match_case_insensitively() {
        assert!(wildcard_match("s3:get*", "s3:getobject"));
        assert!(wildcard_match("*", "anything:at-all"));
        assert!(wildcard_match("ec2:?escribe*", "ec2:describeinstances"));
        assert!(!wildcard_match("s3:get*", "s3:putobject"));
        assert!(wildcard_match("IAM:Pass*", "iam:passrole"));
        assert!(!wildcard_match("iam:passrole", "iam:passrolex"));
    }

    #[test]
    fn url_encoded_documents_parse() {
        let doc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let p = PolicyDocument::from_text(doc).unwrap();
        assert_eq!(p.statements.len(), 1);
        assert!(p.statements[0].matches_action("s3:getobject"));
        assert!(p.statements[0].all_resources());
    }

    #[test]
    fn single_statement_objects_and_not_action() {
        let p = PolicyDocument::from_value(&json!({
            "Statement": {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}
        }))
        .unwrap();
        let st = &p.statements[0];
        assert!(st.matches_action("ec2:runinstances"));
        assert!(!st.matches_action("iam:passrole"));
    }

    #[test]
    fn resource_coverage() {
        assert!(covers("*", "arn:aws:s3:::*/*"));
        assert!(covers("arn:aws:s3:::*", "arn:aws:s3:::*/*"));
        assert!(!covers("arn:aws:s3:::my-bucket/*", "arn:aws:s3:::*/*"));
        assert!(covers(
            "arn:aws:ec2:us-east-1:111122223333:instance/*",
            "arn:aws:ec2:*:*:instance/*"
        ));
        assert!(!covers(
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc",
            "arn:aws:ec2:*:*:instance/*"
        ));
        assert!(!covers("arn:aws:s3:::*", "*"));
    }

    #[test]
    fn read_only_patterns() {
        assert!(is_read_only_pattern("s3:get*"));
        assert!(is_read_only_pattern("ec2:describeinstances"));
        assert!(!is_read_only_pattern("s3:*"));
        assert!(!is_read_only_pattern("*"));
        assert!(!is_read_only_pattern("s3:g*"));
        assert!(!is_read_only_pattern("s3:putobject"));
        assert!(is_broad_write_pattern("ec2:*"));
        assert!(!is_broad_write_pattern("ec2:describe*"));
    }

    #[test]
    fn bad_documents_are_errors_not_panics() {
        assert!(PolicyDocument::from_text("%7B%22Statement").is_err());
        assert!(PolicyDocument::from_value(&json!({"Statement": [{"Action": "*"}]})).is_err());
        assert!(PolicyDocument::from_value(&json!(42)).is_err());
    }
}
