//! AWS verification against moto in server mode with IAM authentication on
//! (`aws_moto.py`): a working key is live with its ARN, a deleted key and an
//! unknown key are invalid as on AWS, a key with the wrong secret is
//! invalid, a canary key is never sent, and `analyze` classifies the
//! user's policies with the inventory's policy engine (admin, data access,
//! and "could not read" for a key without IAM read rights).
//!
//! When Python with moto and boto3 is missing the tests fail naming what
//! to install (`scripts/install-test-deps.sh`); they never skip.

use keytrail_types::{
    Confidence, Finding, Location, Origin, Privilege, Secret, Severity, VerificationStatus,
};
use keytrail_verify::{Options, Verifier};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

struct Moto {
    _child: Child,
    manifest: Value,
}

fn moto() -> &'static Moto {
    static M: OnceLock<Moto> = OnceLock::new();
    M.get_or_init(|| {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let ok = Command::new(&python)
            .args(["-c", "import moto.server, boto3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "moto[server] and boto3 are not installed ({python} cannot import them); run scripts/install-test-deps.sh");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_moto.py");
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aws_moto.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // moto prints its own start-up line: the manifest is the JSON one.
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line.starts_with('{') {
                    let _ = tx.send(line);
                    break;
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(300)).expect("aws_moto.py did not report");
        let manifest = serde_json::from_str(&line).unwrap_or_else(|e| panic!("aws_moto.py: {line:?}: {e}"));
        Moto { _child: child, manifest }
    })
}

fn pair(id: &str, secret: &str) -> Finding {
    Finding {
        rule_id: "aws.access_key.pair".into(),
        rule_name: "AWS access key".into(),
        confidence: Confidence::High,
        severity: Severity::Critical,
        fingerprint: keytrail_scan::fingerprint("aws.access_key.pair", secret.as_bytes()),
        secret_redacted: keytrail_types::redact(secret.as_bytes()),
        secret: Secret::new(secret.into()),
        context: vec![("id".into(), id.into())],
        locations: vec![Location {
            path: "creds".into(),
            line: 1,
            column: 1,
            offset: 0,
            snippet: String::new(),
            origin: Origin::File,
            decoded: None,
        }],
        notes: Vec::new(),
        remediation: None,
        verification: None,
        blast_radius: None,
    }
}

fn key(name: &str) -> (String, String) {
    let k = &moto().manifest["keys"][name];
    (
        k["id"].as_str().unwrap().into(),
        k["secret"].as_str().unwrap().into(),
    )
}

fn verifier(analyze: bool) -> Verifier {
    let mut o = Options {
        analyze,
        ..Options::default()
    };
    let ep = moto().manifest["endpoint"].as_str().unwrap();
    o.endpoints.set("aws.sts", ep).unwrap();
    o.endpoints.set("aws.iam", ep).unwrap();
    Verifier::new(o).unwrap()
}

#[test]
fn live_deleted_unknown_and_wrong_secret() {
    let (id, secret) = key("reader");
    let (did, dsecret) = key("deleted");
    let mut fs = vec![
        pair(&id, &secret),
        pair(&did, &dsecret),
        // A well-formed key id no account has.
        pair(
            "AKIAZZZZZZZZZZZZZZZZ",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCD",
        ),
        pair(&id, "abcdefghijklmnopqrstuvwxyz0123456789WXYZ"),
    ];
    let s = verifier(false).verify(&mut fs);
    let st: Vec<_> = fs.iter().map(|f| f.verification.clone().unwrap()).collect();
    assert_eq!(st[0].status, VerificationStatus::Live, "{:?}", st[0]);
    let arn = &st[0].identity.iter().find(|(k, _)| k == "arn").unwrap().1;
    assert!(arn.ends_with(":user/reader"), "{arn}");
    for v in &st[1..] {
        assert_eq!(v.status, VerificationStatus::Invalid, "{v:?}");
    }
    assert!(
        st[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("InvalidClientTokenId"),
        "{:?}",
        st[1]
    );
    assert!(
        st[3]
            .detail
            .as_deref()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{:?}",
        st[3]
    );
    assert_eq!(s.requests, 4);
}

#[test]
fn analyze_classifies_the_users_policies() {
    let mut fs = vec![
        pair(&key("admin").0, &key("admin").1),
        pair(&key("reader").0, &key("reader").1),
        pair(&key("nobody").0, &key("nobody").1),
    ];
    verifier(true).verify(&mut fs);
    let b: Vec<_> = fs
        .iter()
        .map(|f| f.blast_radius.clone().expect("live → blast radius"))
        .collect();
    assert_eq!(b[0].privilege, Privilege::Admin, "{:?}", b[0]);
    assert!(b[0].scopes.contains(&"AdministratorAccess".to_string()));
    assert!(b[0].evidence.iter().any(|e| e.contains("allows * on *")));
    assert_eq!(b[1].privilege, Privilege::DataAccess, "{:?}", b[1]);
    assert!(b[1].scopes.contains(&"inline:self-and-s3".to_string()));
    assert_eq!(b[2].privilege, Privilege::Unknown, "{:?}", b[2]);
    assert!(
        b[2].unknowns
            .iter()
            .any(|u| u.contains("could not read") && u.contains("AccessDenied")),
        "{:?}",
        b[2]
    );
}
