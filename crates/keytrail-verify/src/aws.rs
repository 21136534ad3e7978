//! AWS access keys: Signature Version 4 to STS `GetCallerIdentity` (the one
//! call no policy can deny, so it answers "does this key work" without
//! side effects), and for `--analyze` the principal's IAM policies, read
//! with the key itself and classified by the inventory's policy engine.
//!
//! Endpoints follow the AWS conventions: `AWS_ENDPOINT_URL_STS` /
//! `AWS_ENDPOINT_URL_IAM`, then `AWS_ENDPOINT_URL`, then `endpoint_url` of
//! the profile (`AWS_PROFILE`, else `default`) in `AWS_CONFIG_FILE` (else
//! `~/.aws/config`), then the public global endpoints. Canary keys never
//! get here (see [`crate::canary`]).

use crate::Outcome;
use crate::http::{Client, Endpoints, Request, Response};
use hmac::{Hmac, Mac};
use keytrail_inventory::Facts;
use keytrail_inventory::policy::{PolicyDocument, percent_decode};
use keytrail_inventory::privilege::PrivilegeIndex;
use keytrail_inventory::snapshot::aws::{
    AttachedPolicy, AuthorizationDetails, IamGroup, IamUser, ManagedPolicy, NamedPolicy,
};
use keytrail_types::{BlastRadius, Privilege, VerificationStatus};
use sha2::{Digest, Sha256};

/// Where STS and IAM are, and the signing region.
#[derive(Debug, Clone)]
pub struct AwsEndpoints {
    /// STS base URL.
    pub sts: String,
    /// IAM base URL.
    pub iam: String,
    /// Signing region.
    pub region: String,
}

fn profile_setting(key: &str) -> Option<String> {
    let path = std::env::var_os("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".aws/config"))
        })?;
    let text = std::fs::read_to_string(path).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let wanted = [format!("[profile {profile}]"), format!("[{profile}]")];
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = wanted.iter().any(|w| w == t);
            continue;
        }
        if inside
            && !line.starts_with([' ', '\t'])
            && let Some((k, v)) = t.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

impl AwsEndpoints {
    /// Resolve from explicit overrides (`aws.sts`, `aws.iam`), the
    /// environment and the profile.
    pub fn resolve(overrides: &Endpoints) -> Result<AwsEndpoints, String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let general = env("AWS_ENDPOINT_URL").or_else(|| profile_setting("endpoint_url"));
        let pick = |id: &str, var: &str, default: &str| -> Result<String, String> {
            let v = overrides
                .get(id)
                .map(str::to_string)
                .or_else(|| env(var))
                .or_else(|| general.clone())
                .unwrap_or_else(|| default.to_string());
            crate::http::parse_base(&v).map_err(|e| format!("{var}: {e}"))?;
            Ok(v.trim_end_matches('/').to_string())
        };
        let sts = pick(
            "aws.sts",
            "AWS_ENDPOINT_URL_STS",
            "https://sts.amazonaws.com",
        )?;
        let iam = pick(
            "aws.iam",
            "AWS_ENDPOINT_URL_IAM",
            "https://iam.amazonaws.com",
        )?;
        let custom = sts != "https://sts.amazonaws.com";
        let region = if custom {
            env("AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .or_else(|| profile_setting("region"))
                .unwrap_or_else(|| "us-east-1".into())
        } else {
            // The global endpoints sign for us-east-1.
            "us-east-1".into()
        };
        Ok(AwsEndpoints { sts, iam, region })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("hmac takes any key");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// A signed `POST /` form request (the Query API of STS and IAM).
pub fn signed_form(
    base: &str,
    region: &str,
    service: &str,
    key_id: &str,
    secret: &str,
    form: &[(&str, &str)],
    unix: u64,
) -> Result<Request, String> {
    let (_, authority) = crate::http::parse_base(base)?;
    let prefix = base
        .split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| &r[i..]))
        .unwrap_or("")
        .trim_end_matches('/');
    let path = format!("{prefix}/");
    let body = form
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::http::url_encode(k),
                crate::http::url_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let amz_date = crate::time::amz_date(unix);
    let date = &amz_date[..8];
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let canonical = format!(
        "POST\n{path}\n\ncontent-type:{content_type}\nhost:{authority}\nx-amz-date:{amz_date}\n\ncontent-type;host;x-amz-date\n{}",
        hex(&Sha256::digest(body.as_bytes()))
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        k = hmac(&k, part.as_bytes());
    }
    let signature = hex(&hmac(&k, to_sign.as_bytes()));
    Ok(Request {
        method: "POST".into(),
        base: base.trim_end_matches('/').to_string(),
        path: "/".into(),
        headers: vec![
            ("content-type".into(), content_type.into()),
            ("x-amz-date".into(), amz_date.clone()),
            (
                "authorization".into(),
                format!(
                    "AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
                ),
            ),
        ],
        body: Some(body.into_bytes()),
    })
}

/// Text of every `<tag>…</tag>` in an XML answer, entities decoded.
pub fn xml_all(body: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(unescape(&after[..j]));
        rest = &after[j + close.len()..];
    }
    out
}

fn xml_first(body: &str, tag: &str) -> Option<String> {
    xml_all(body, tag).into_iter().next()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#xD;", "\r")
        .replace("&#xA;", "\n")
        .replace("&amp;", "&")
}

fn error_of(r: &Response) -> String {
    let code = xml_first(&r.body, "Code").unwrap_or_default();
    let msg = xml_first(&r.body, "Message").unwrap_or_default();
    format!("HTTP {}: {code} {msg}", r.status)
        .trim()
        .to_string()
}

/// Verify an access key pair with STS `GetCallerIdentity`.
pub fn verify(
    client: &Client,
    ep: &AwsEndpoints,
    key_id: &str,
    secret: &str,
    analyze: bool,
) -> Outcome {
    let req = match signed_form(
        &ep.sts,
        &ep.region,
        "sts",
        key_id,
        secret,
        &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
        crate::time::now_unix(),
    ) {
        Ok(r) => r,
        Err(e) => return Outcome::unknown(e),
    };
    let r = match crate::send_with_retry(client, &req, "aws.sts") {
        Ok(r) => r,
        Err(e) => return Outcome::unknown(e),
    };
    if r.status == 200 {
        let arn = xml_first(&r.body, "Arn");
        let account = xml_first(&r.body, "Account");
        let user_id = xml_first(&r.body, "UserId");
        let Some(arn) = arn else {
            return Outcome::unknown(format!(
                "HTTP 200 without an Arn: {}",
                crate::excerpt(&r.body)
            ));
        };
        let mut identity = vec![("arn".to_string(), arn.clone())];
        identity.extend(account.map(|a| ("account".to_string(), a)));
        identity.extend(user_id.map(|u| ("user_id".to_string(), u)));
        let mut out = Outcome::new(
            VerificationStatus::Live,
            Some("GetCallerIdentity succeeded".into()),
        );
        out.identity = identity;
        if analyze {
            out.blast = Some(analyze_principal(client, ep, key_id, secret, &arn));
        }
        return out;
    }
    let err = error_of(&r);
    let code = xml_first(&r.body, "Code").unwrap_or_default();
    match code.as_str() {
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidAccessKeyId"
        | "UnrecognizedClientException" => Outcome::new(VerificationStatus::Invalid, Some(err)),
        _ => Outcome::unknown(err),
    }
}

/// One IAM Query API call with the key; `Err` carries why it failed.
fn iam(
    client: &Client,
    ep: &AwsEndpoints,
    key_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Result<String, String> {
    let mut f = form.to_vec();
    f.push(("Version", "2010-05-08"));
    let req = signed_form(
        &ep.iam,
        &ep.region,
        "iam",
        key_id,
        secret,
        &f,
        crate::time::now_unix(),
    )?;
    let r = crate::send_with_retry(client, &req, "aws.iam")?;
    if r.status == 200 {
        Ok(r.body)
    } else {
        Err(error_of(&r))
    }
}

fn policy_doc(encoded: &str) -> Option<PolicyDocument> {
    PolicyDocument::from_text(&percent_decode(encoded)).ok()
}

/// Read the principal's policies with the key and classify them.
fn analyze_principal(
    client: &Client,
    ep: &AwsEndpoints,
    key_id: &str,
    secret: &str,
    arn: &str,
) -> BlastRadius {
    let account = arn.split(':').nth(4).unwrap_or("").to_string();
    let mut b = BlastRadius {
        privilege: Privilege::Unknown,
        scopes: Vec::new(),
        resources: vec![format!("aws-account:{account}")],
        evidence: Vec::new(),
        unknowns: Vec::new(),
    };
    let resource = arn.split(':').nth(5).unwrap_or("");
    if resource == "root" {
        b.privilege = Privilege::Admin;
        b.evidence.push(
            "the key belongs to the account's root user: every action on every resource".into(),
        );
        return b;
    }
    let Some(user) = resource
        .strip_prefix("user/")
        .map(|p| p.rsplit('/').next().unwrap_or(p))
    else {
        b.unknowns.push(format!(
            "the principal `{resource}` is not an IAM user; only user keys are analysed"
        ));
        return b;
    };
    let mut failures = Vec::new();
    let mut auth = AuthorizationDetails::default();
    let mut iam_user = IamUser {
        arn: arn.to_string(),
        name: user.to_string(),
        ..Default::default()
    };
    let mut managed_arns: Vec<(String, String)> = Vec::new();
    // The user's own policies.
    match iam(
        client,
        ep,
        key_id,
        secret,
        &[("Action", "ListAttachedUserPolicies"), ("UserName", user)],
    ) {
        Ok(body) => {
            for (n, a) in xml_all(&body, "PolicyName")
                .into_iter()
                .zip(xml_all(&body, "PolicyArn"))
            {
                iam_user.attached.push(AttachedPolicy {
                    policy_name: n.clone(),
                    policy_arn: a.clone(),
                });
                managed_arns.push((n, a));
            }
        }
        Err(e) => failures.push(format!("ListAttachedUserPolicies: {e}")),
    }
    match iam(
        client,
        ep,
        key_id,
        secret,
        &[("Action", "ListUserPolicies"), ("UserName", user)],
    ) {
        Ok(body) => {
            for name in xml_all(&body, "member") {
                match iam(
                    client,
                    ep,
                    key_id,
                    secret,
                    &[
                        ("Action", "GetUserPolicy"),
                        ("UserName", user),
                        ("PolicyName", &name),
                    ],
                ) {
                    Ok(p) => match xml_first(&p, "PolicyDocument")
                        .as_deref()
                        .and_then(policy_doc)
                    {
                        Some(document) => iam_user.inline.push(NamedPolicy { name, document }),
                        None => failures.push(format!("inline policy {name}: unreadable document")),
                    },
                    Err(e) => failures.push(format!("GetUserPolicy {name}: {e}")),
                }
            }
        }
        Err(e) => failures.push(format!("ListUserPolicies: {e}")),
    }
    // Its groups' policies.
    match iam(
        client,
        ep,
        key_id,
        secret,
        &[("Action", "ListGroupsForUser"), ("UserName", user)],
    ) {
        Ok(body) => {
            for g in xml_all(&body, "GroupName") {
                let mut group = IamGroup {
                    name: g.clone(),
                    ..Default::default()
                };
                match iam(
                    client,
                    ep,
                    key_id,
                    secret,
                    &[("Action", "ListAttachedGroupPolicies"), ("GroupName", &g)],
                ) {
                    Ok(body) => {
                        for (n, a) in xml_all(&body, "PolicyName")
                            .into_iter()
                            .zip(xml_all(&body, "PolicyArn"))
                        {
                            group.attached.push(AttachedPolicy {
                                policy_name: n.clone(),
                                policy_arn: a.clone(),
                            });
                            managed_arns.push((n, a));
                        }
                    }
                    Err(e) => failures.push(format!("ListAttachedGroupPolicies {g}: {e}")),
                }
                match iam(
                    client,
                    ep,
                    key_id,
                    secret,
                    &[("Action", "ListGroupPolicies"), ("GroupName", &g)],
                ) {
                    Ok(body) => {
                        for name in xml_all(&body, "member") {
                            match iam(
                                client,
                                ep,
                                key_id,
                                secret,
                                &[
                                    ("Action", "GetGroupPolicy"),
                                    ("GroupName", &g),
                                    ("PolicyName", &name),
                                ],
                            ) {
                                Ok(p) => {
                                    if let Some(document) = xml_first(&p, "PolicyDocument")
                                        .as_deref()
                                        .and_then(policy_doc)
                                    {
                                        group.inline.push(NamedPolicy { name, document });
                                    }
                                }
                                Err(e) => failures.push(format!("GetGroupPolicy {g}/{name}: {e}")),
                            }
                        }
                    }
                    Err(e) => failures.push(format!("ListGroupPolicies {g}: {e}")),
                }
                iam_user.groups.push(g);
                auth.groups.push(group);
            }
        }
        Err(e) => failures.push(format!("ListGroupsForUser: {e}")),
    }
    // Managed policy documents (default version).
    managed_arns.sort();
    managed_arns.dedup();
    for (name, parn) in &managed_arns {
        let doc = iam(
            client,
            ep,
            key_id,
            secret,
            &[("Action", "GetPolicy"), ("PolicyArn", parn)],
        )
        .and_then(|body| {
            xml_first(&body, "DefaultVersionId").ok_or_else(|| "no DefaultVersionId".to_string())
        })
        .and_then(|v| {
            iam(
                client,
                ep,
                key_id,
                secret,
                &[
                    ("Action", "GetPolicyVersion"),
                    ("PolicyArn", parn),
                    ("VersionId", &v),
                ],
            )
        })
        .and_then(|body| {
            xml_first(&body, "Document")
                .as_deref()
                .and_then(policy_doc)
                .ok_or_else(|| "unreadable document".to_string())
        });
        match doc {
            Ok(d) => {
                auth.policies.insert(
                    parn.clone(),
                    ManagedPolicy {
                        arn: parn.clone(),
                        name: name.clone(),
                        document: Some(d),
                    },
                );
            }
            Err(e) => failures.push(format!("policy {parn}: {e}")),
        }
    }
    b.scopes = iam_user
        .attached
        .iter()
        .map(|a| a.policy_name.clone())
        .chain(iam_user.inline.iter().map(|p| format!("inline:{}", p.name)))
        .chain(auth.groups.iter().flat_map(|g| {
            g.attached
                .iter()
                .map(move |a| format!("group:{}:{}", g.name, a.policy_name))
                .chain(
                    g.inline
                        .iter()
                        .map(move |p| format!("group:{}:inline:{}", g.name, p.name)),
                )
        }))
        .collect();
    b.resources
        .extend(iam_user.groups.iter().map(|g| format!("iam-group:{g}")));
    auth.users.push(iam_user.clone());
    let privileges = PrivilegeIndex::new(&auth, Facts::builtin()).user(&iam_user);
    let label = privileges.labels().first().copied().unwrap_or("unknown");
    let class = match label {
        "admin" => Privilege::Admin,
        "privilege-escalation" => Privilege::PrivilegeEscalation,
        "data-access" => Privilege::DataAccess,
        "write" => Privilege::Write,
        "read-only" => Privilege::ReadOnly,
        "none" => Privilege::None,
        _ => Privilege::Unknown,
    };
    for p in &privileges.admin_via {
        b.evidence.push(format!("{p} allows * on *"));
    }
    for (id, name) in &privileges.privesc {
        b.evidence
            .push(format!("privilege escalation path {id}: {name}"));
    }
    for p in &privileges.probes {
        b.evidence.push(format!("allowed: {p}"));
    }
    for (p, pat) in &privileges.broad_write {
        b.evidence
            .push(format!("{p} allows {pat} on every resource"));
    }
    if failures.is_empty() {
        b.privilege = class;
    } else {
        // What was read is a lower bound; a class below admin is not proven.
        b.unknowns.push(format!(
            "the key could not read all of its own IAM policies ({}); a permission simulation needs iam:SimulatePrincipalPolicy, which such keys rarely have",
            failures.join("; ")
        ));
        b.privilege = if class == Privilege::Admin {
            Privilege::Admin
        } else if privileges.policies.is_empty() {
            Privilege::Unknown
        } else {
            class
        };
        if b.privilege != Privilege::Unknown && b.privilege != Privilege::Admin {
            b.unknowns.push(format!(
                "`{}` is a lower bound from the policies that could be read",
                b.privilege
            ));
        }
    }
    b.unknowns
        .push("resource policies (S3 bucket, KMS key, role trust) and SCPs are not read".into());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigv4_matches_the_documented_example() {
        // The signing key derivation of AWS's SigV4 documentation example
        // (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam).
        let mut k = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            k = hmac(&k, part.as_bytes());
        }
        assert_eq!(
            hex(&k),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        let r = signed_form(
            "http://127.0.0.1:5000",
            "us-east-1",
            "sts",
            "AKIDEXAMPLE",
            "secret",
            &[("Action", "GetCallerIdentity")],
            0,
        )
        .unwrap();
        let auth = &r
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19700101/us-east-1/sts/aws4_request"
        ));
        assert!(!auth.contains("secret"));
    }

    #[test]
    fn xml_fields() {
        let b = "<R><Arn>arn:aws:iam::1:user/a&amp;b</Arn><member>x</member><member>y</member></R>";
        assert_eq!(xml_all(b, "member"), vec!["x", "y"]);
        assert_eq!(xml_first(b, "Arn").unwrap(), "arn:aws:iam::1:user/a&b");
    }
}
