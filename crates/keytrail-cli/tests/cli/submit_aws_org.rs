//! `keytrail collect aws --role-arn`, `keytrail submit aws-org` and the
//! posture jobs of `keytrail worker`, against moto serving an AWS
//! organization (`tests/org_moto.py`: a management account, members alpha
//! and beta with different IAM users and keys, a member without the role,
//! a closed one, and as many more as a test asks for), a nats-server with
//! JetStream and a PostgreSQL database, as the other worker tests start
//! them. moto maps an assumed role's credentials to the role's own
//! account, so each account's posture is its own; the fixture makes moto
//! refuse a role that does not exist and ListAccounts outside the
//! management account, as AWS does.
//!
//! When Python with moto and boto3 is missing the tests fail naming what to
//! install (`scripts/install-test-deps.sh` installs them); they never skip.

use crate::store::Pg;
use crate::worker::{Nats, Worker, count, jobs, lines};
use crate::{CliTest, Run};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto with the organization; stopped (its standard input closed) when dropped.
struct Org {
    child: Child,
    served: Value,
}

impl Org {
    fn start(fillers: usize) -> Org {
        let fillers = fillers.to_string();
        let (child, served) =
            crate::start_python_fixture("org_moto.py", &["--fillers", &fillers], &[]);
        Org { child, served }
    }

    fn endpoint(&self) -> &str {
        self.served["endpoint"].as_str().unwrap()
    }

    fn account(&self, name: &str) -> String {
        self.served["accounts"][name].as_str().unwrap().to_string()
    }

    fn management(&self) -> String {
        self.served["management"].as_str().unwrap().to_string()
    }

    /// `command` talking to this moto as the management account, or as
    /// `who` ("member", "outsider") with the credentials the fixture made.
    fn env(&self, command: &mut Command, who: Option<&str>) {
        crate::aws_test_env(command, self.endpoint());
        command.env("AWS_MAX_ATTEMPTS", "1");
        if let Some(who) = who {
            let c = &self.served[who];
            command
                .env("AWS_ACCESS_KEY_ID", c["access_key_id"].as_str().unwrap())
                .env(
                    "AWS_SECRET_ACCESS_KEY",
                    c["secret_access_key"].as_str().unwrap(),
                )
                .env("AWS_SESSION_TOKEN", c["session_token"].as_str().unwrap());
        }
    }

    fn run(&self, t: &CliTest, args: &[&str], who: Option<&str>) -> Run {
        let mut c = t.command(args);
        self.env(&mut c, who);
        let o = c.stdin(Stdio::null()).output().expect("run keytrail");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Drop for Org {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn role(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

#[test]
fn collect_with_role_arn_collects_the_role_s_account() {
    let org = Org::start(0);
    let t = CliTest::new();
    let alpha = org.account("alpha");
    let arn = role(&alpha, "OrganizationAccountAccessRole");
    let collect = |out: &str, extra: &[&str]| {
        let mut args = vec!["collect", "aws", "--region", "us-east-1", "--out", out];
        args.extend(extra);
        org.run(&t, &args, None)
    };

    let r = collect("snap", &["--role-arn", &arn]);
    // moto lacks GetInstanceMetadataDefaults: a partial snapshot, exit 1.
    assert!(r.code <= 1, "{r:?}");
    let ident: Value =
        serde_json::from_str(&t.read("snap/aws/sts-get-caller-identity.json")).unwrap();
    assert_eq!(ident["Account"], alpha.as_str(), "{ident}");
    assert!(
        ident["Arn"]
            .as_str()
            .unwrap()
            .ends_with(":assumed-role/OrganizationAccountAccessRole/keytrail-collect"),
        "{ident}"
    );
    // The role's account's IAM, not the caller's.
    assert!(
        t.root()
            .join("snap/aws/iam-list-access-keys/alpha-deploy.json")
            .is_file()
    );
    let details = t.read("snap/aws/iam-get-account-authorization-details.json");
    assert!(
        details.contains("alpha-deploy") && !details.contains("beta-ci"),
        "{details}"
    );
    let p = t.run(&["posture", "--snapshot", "snap", "--format", "jsonl"]);
    assert_eq!(p.code, 1, "{p:?}");
    assert!(
        p.stdout
            .contains(&format!("arn:aws:iam::{alpha}:user/alpha-deploy"))
            && p.stdout.contains("aws.iam.access_key_age"),
        "{}",
        p.stdout
    );

    // A role that does not exist: STS refuses, exit 2 with its reason, and
    // the snapshot's error record says so.
    let norole = role(&org.account("norole"), "OrganizationAccountAccessRole");
    let r = collect("refused", &["--role-arn", &norole, "--external-id", "x-1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nothing collected"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("AssumeRole {norole} failed"))
            && r.stderr.contains("AccessDenied")
            && r.stderr
                .contains("not authorized to perform: sts:AssumeRole"),
        "{}",
        r.stderr
    );
    let errs = t.read("refused/aws/collection-errors.json");
    assert!(errs.contains("AccessDenied"), "{errs}");
    assert!(
        !t.root()
            .join("refused/aws/sts-get-caller-identity.json")
            .exists()
    );

    // Bad flags are refused before anything is sent.
    let r = collect("bad", &["--role-arn", "OrganizationAccountAccessRole"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("a role ARN is arn:aws:iam::ACCOUNT_ID:role/NAME"),
        "{}",
        r.stderr
    );
    let r = collect("bad", &["--external-id", "x-1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--role-arn"), "{}", r.stderr);
    assert!(!t.root().join("bad").exists());
}

/// The accounts of a `--dry-run`'s jobs, in order, checking each job's shape.
fn dry_accounts(r: &Run, role_name: &str) -> Vec<String> {
    lines(r)
        .iter()
        .map(|j| {
            assert_eq!(j["kind"], "posture", "{j}");
            assert_eq!(j["target"]["type"], "aws_account", "{j}");
            assert_eq!(j["target"]["value"]["role"], role_name, "{j}");
            assert!(j["key"].as_str().unwrap().starts_with("posture-"), "{j}");
            j["target"]["value"]["account"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn aws_org_dry_run_lists_every_page_and_filters_accounts() {
    // 26 accounts: ListAccounts answers 20 at most, so two pages.
    let org = Org::start(21);
    let t = CliTest::new();
    let mgmt = org.management();
    let (alpha, closed) = (org.account("alpha"), org.account("closed"));

    let r = org.run(&t, &["submit", "aws-org", "--dry-run"], None);
    assert_eq!(r.code, 0, "{r:?}");
    let listed = dry_accounts(&r, "OrganizationAccountAccessRole");
    assert_eq!(listed.len(), 25, "every ACTIVE account: {}", r.stdout);
    assert!(listed.contains(&mgmt) && listed.contains(&alpha));
    assert!(
        listed.contains(&org.account("filler-20")),
        "the second page"
    );
    assert!(!listed.contains(&closed), "SUSPENDED is skipped");
    assert!(
        r.stderr.contains(
            "aws-org: 26 account(s) listed, 25 to collect through role OrganizationAccountAccessRole; skipped 1 not active (--include-suspended)"
        ),
        "{}",
        r.stderr
    );

    let r = org.run(
        &t,
        &[
            "submit",
            "aws-org",
            "--dry-run",
            "--include-suspended",
            "--role-name",
            "keytrail-audit",
            "--exclude-account",
            &mgmt,
            "--exclude-account",
            &alpha,
            "--exclude-account",
            "999999999999",
            "--key",
            "nightly-1",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let jobs = lines(&r);
    assert_eq!(jobs.len(), 24, "{}", r.stdout);
    assert!(
        jobs.iter()
            .any(|j| j["key"] == format!("nightly-1:aws:{closed}"))
    );
    assert!(
        jobs.iter()
            .all(|j| j["target"]["value"]["role"] == "keytrail-audit"
                && j["target"]["value"]["account"] != mgmt.as_str()
                && j["target"]["value"]["account"] != alpha.as_str())
    );
    assert!(
        r.stderr.contains("skipped 2 excluded (--exclude-account)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("--exclude-account 999999999999: not an account of the organization"),
        "{}",
        r.stderr
    );
    // A job never carries a credential.
    assert!(!r.stdout.contains("fake-secret-for-moto") && !r.stdout.contains("AKIA"));
}

#[test]
fn aws_org_outside_the_management_account_is_an_error() {
    let org = Org::start(0);
    let t = CliTest::new();
    let r = org.run(&t, &["submit", "aws-org", "--dry-run"], Some("member"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("error: aws-org: ListAccounts failed: AccessDeniedException")
            && r.stderr
                .contains("management account or a delegated administrator"),
        "{}",
        r.stderr
    );
    let r = org.run(&t, &["submit", "aws-org", "--dry-run"], Some("outsider"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("error: aws-org: ListAccounts failed: AWSOrganizationsNotInUseException")
            && r.stderr.contains("not in an organization"),
        "{}",
        r.stderr
    );
    // Nothing listening: exit 2, naming the call.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = t.command(&["submit", "aws-org", "--dry-run"]);
    crate::aws_test_env(&mut c, &format!("http://127.0.0.1:{port}"));
    let o = c.env("AWS_MAX_ATTEMPTS", "1").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("error: aws-org: ListAccounts failed"));
    // Bad flags.
    for bad in [
        &["--exclude-account", "12345"][..],
        &["--role-name", "arn:aws:iam::123456789012:role/x"][..],
    ] {
        let mut args = vec!["submit", "aws-org", "--dry-run"];
        args.extend(bad);
        let r = org.run(&t, &args, None);
        assert_eq!(r.code, 2, "{bad:?}: {r:?}");
    }
}

#[test]
fn posture_jobs_record_each_account_once_and_dead_letter_a_refused_role() {
    let org = Org::start(0);
    let nats = Nats::start();
    let pg = Pg::new();
    let db = pg.url();
    let t = CliTest::new();
    let (alpha, beta, norole) = (
        org.account("alpha"),
        org.account("beta"),
        org.account("norole"),
    );
    let mgmt = org.management();
    let url = nats.url();
    let r = org.run(
        &t,
        &[
            "submit",
            "aws-org",
            "--nats",
            &url,
            "--db",
            &db,
            "--exclude-account",
            &mgmt,
            "--key",
            "org-1",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let submitted = lines(&r);
    let mut targets: Vec<&str> = submitted
        .iter()
        .map(|s| s["target"].as_str().unwrap())
        .collect();
    targets.sort();
    let mut want = vec![
        format!("aws:{alpha}"),
        format!("aws:{beta}"),
        format!("aws:{norole}"),
    ];
    want.sort();
    assert_eq!(targets, want, "{}", r.stdout);
    assert!(
        submitted
            .iter()
            .all(|s| s["kind"] == "posture" && s["state"] == "queued" && s["created"] == true)
    );

    // The first worker records a job's run, then dies before acknowledging
    // it: the job runs again and writes nothing twice.
    let worker = |name: &str, extra: &[&str]| {
        let mut args = vec!["--aws-region", "us-east-1", "--max-deliver", "2"];
        args.extend(extra);
        Worker::start_with(&t, &nats, &db, name, &args, |c| org.env(c, None))
    };
    let mut doomed = worker("doomed", &["--fault-pause", "after-record:60s"]);
    let until = Instant::now() + Duration::from_secs(60);
    while count(&pg, "SELECT COUNT(*) FROM runs") == 0 {
        assert!(Instant::now() < until, "{}", doomed.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let first_findings = count(&pg, "SELECT COUNT(*) FROM findings");
    assert!(first_findings > 0, "{}", doomed.log());

    let rescuer = worker("rescuer", &["--exit-when-idle", "8s"]);
    let log = rescuer.wait(180);
    assert!(log.contains("its run was recorded already"), "{log}");

    let listed = jobs(&t, &db);
    assert_eq!(listed.len(), 3, "{listed:?}");
    let job = |account: &str| {
        listed
            .iter()
            .find(|j| j["target"] == format!("aws:{account}"))
            .unwrap_or_else(|| panic!("no job of {account}: {listed:?}"))
    };
    for a in [&alpha, &beta] {
        let j = job(a);
        assert_eq!(j["kind"], "posture", "{j}");
        assert_eq!(j["state"], "done", "{j}\n{log}");
        assert!(j["findings"].as_i64().unwrap() > 0, "{j}");
        assert_eq!(j["job_key"], format!("org-1:aws:{a}"));
    }
    // The role that cannot be assumed: failed with STS's reason and
    // dead-lettered.
    let j = job(&norole);
    assert_eq!(j["state"], "failed", "{j}");
    let error = j["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "AssumeRole {} failed",
            role(&norole, "OrganizationAccountAccessRole")
        )) && error.contains("AccessDenied"),
        "{error}"
    );
    assert!(
        log.contains(&format!("job org-1:aws:{norole} dead-lettered")),
        "{log}"
    );
    assert!(log.contains("AccessDenied"), "{log}");

    // One run per account done; each finding once, in one target.
    assert_eq!(count(&pg, "SELECT COUNT(*) FROM runs"), 2);
    assert_eq!(
        count(&pg, "SELECT COUNT(*) FROM finding_targets"),
        count(&pg, "SELECT COUNT(*) FROM findings")
    );
    assert_eq!(
        count(&pg, "SELECT COUNT(*) FROM findings WHERE kind <> 'posture'"),
        0
    );
    let r = t.run(&["findings", "--db", &db, "--kind", "posture"]);
    assert_eq!(r.code, 1, "{r:?}");
    let found = lines(&r);
    assert_eq!(
        found.len() as i64,
        count(&pg, "SELECT COUNT(*) FROM findings"),
        "{}",
        r.stdout
    );
    // Each account's own posture: alpha's old key, beta's two keys.
    let has = |check: &str, resource: &str| {
        found
            .iter()
            .any(|f| f["check"] == check && f["resource"] == resource)
    };
    let alpha_user = format!("arn:aws:iam::{alpha}:user/alpha-deploy");
    let beta_user = format!("arn:aws:iam::{beta}:user/beta-ci");
    assert!(has("aws.iam.access_key_age", &alpha_user), "{}", r.stdout);
    assert!(has("aws.iam.two_active_keys", &beta_user), "{}", r.stdout);
    assert!(!has("aws.iam.two_active_keys", &alpha_user), "{}", r.stdout);
    assert!(!has("aws.iam.access_key_age", &beta_user), "{}", r.stdout);
    // Nothing of the accounts without a job (the management account is
    // named only as the roles' trusted account).
    for other in [&norole, &mgmt] {
        let prefix = format!("arn:aws:iam::{other}:");
        assert!(
            !found
                .iter()
                .any(|f| f["resource"].as_str().unwrap().starts_with(&prefix)),
            "{}",
            r.stdout
        );
    }
    // Never a credential in the store or the logs.
    let dump = pg.dump();
    assert!(!dump.contains("fake-secret-for-moto") && !log.contains("fake-secret-for-moto"));

    let r = t.run(&["jobs", "--db", &db, "--format", "human"]);
    assert!(
        r.stdout.contains(&format!("aws:{alpha}")) && r.stdout.contains("AccessDenied"),
        "{}",
        r.stdout
    );
}
