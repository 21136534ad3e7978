//! `keytrail exposure`: the test-kit scenario (keys committed on known dates,
//! CloudTrail around them in the S3 layout, the account's snapshot) scanned by
//! `keytrail scan` and joined; every field of every record is checked. Bad
//! inputs: findings without dates, gaps in the logs, keys of other accounts,
//! a key id without a user, malformed findings files.

use crate::CliTest;
use keytrail_testkit::exposure::{
    ACCOUNT, ATTACKER_IP, ExposureScenario, KNOWN_IP, OTHER_ACCOUNT, at, write_exposure_scenario,
};
use serde_json::Value;

fn time(ms: i64) -> String {
    keytrail_testkit::cloudtrail::format_time(ms)
}

/// Scans a scenario's history into findings.json (it has secrets: exit 1).
fn scan_history(t: &CliTest, repo: &std::path::Path) {
    let r = t.run(&[
        "scan",
        "--format",
        "json",
        "-o",
        "findings.json",
        repo.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "scan: {}", r.stderr);
}

/// Generates the scenario and scans its history into findings.json.
fn scenario(t: &CliTest) -> ExposureScenario {
    let sc = write_exposure_scenario(&t.root().join("sc"), 5).expect("scenario");
    scan_history(t, &sc.repo);
    sc
}

/// The plan item of credential `id`.
fn plan_item<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["credential_id"] == id)
        .unwrap_or_else(|| panic!("no plan item for {id}: {v:#}"))
}

fn exposure(t: &CliTest, sc: &ExposureScenario, extra: &[&str]) -> (crate::Run, Value) {
    let mut args = vec![
        "exposure",
        "--findings",
        "findings.json",
        "--snapshot",
        sc.snapshot.to_str().unwrap(),
        "--cloudtrail",
        sc.trail.to_str().unwrap(),
        "--owners",
        sc.owners.to_str().unwrap(),
        "--format",
        "json",
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    let r = t.run(&args);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    (r, v)
}

fn record<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["access_key_id"] == key)
        .unwrap_or_else(|| panic!("no record for {key}: {v:#}"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn scenario_every_field() {
    let t = CliTest::new();
    let sc = scenario(&t);
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 1000;
    let (r, v) = exposure(&t, &sc, &["--plan"]);
    assert_eq!(r.code, 1, "a key was used after its leak: {}", r.stderr);
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 4, "{v:#}");
    // Ordered by risk: the compromised key first.
    assert_eq!(recs[0]["access_key_id"], sc.used.id.as_str());
    assert_eq!(v["version"], 1);

    // The key used after the leak from a new network and through assumed roles.
    let u = record(&v, &sc.used.id);
    assert_eq!(u["credential"], "aws_access_key");
    assert_eq!(u["leaked_at"], time(sc.used.leaked_ms));
    assert_eq!(
        u["leaked_at_from"],
        format!("git commit {} (author date)", sc.used.commit)
    );
    let w = &u["leaked_where"][0];
    assert_eq!(w["source"], "git");
    assert_eq!(w["commit"], sc.used.commit.as_str());
    assert_eq!(w["path"], ".github/workflows/deploy.yml");
    assert_eq!(w["time"], time(sc.used.leaked_ms));
    assert_eq!(
        u["identity"]["arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/deploy-bot")
    );
    assert_eq!(u["identity"]["name"], "deploy-bot");
    assert_eq!(u["identity"]["account_id"], ACCOUNT);
    assert_eq!(u["identity"]["from"], "snapshot");
    assert_eq!(u["identity"]["owner"], "platform-team");
    assert_eq!(u["identity"]["purpose"], "CI deploys to production");
    assert_eq!(u["identity"]["environment"], "prod");
    assert_eq!(u["status"], "active");
    assert_eq!(u["live"], true);
    // Scoped grants and a role it may assume: the policy engine calls it `write`.
    assert_eq!(strs(&u["privilege"]), ["write"]);
    assert_eq!(strs(&u["reach"]["buckets_read"]), ["prod-data"]);
    assert_eq!(strs(&u["reach"]["buckets_write"]), ["prod-data"]);
    assert_eq!(
        strs(&u["reach"]["secrets"]),
        [format!(
            "arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/*"
        )]
    );
    assert_eq!(
        strs(&u["reach"]["assumable_roles"]),
        [format!("arn:aws:iam::{ACCOUNT}:role/ops-admin")]
    );
    assert_eq!(u["used_after_leak"], true);
    // Daily CI uses from day 6 (09:30, after the 09:00 leak) to 19, minus the two
    // days in the gap, plus the four attacker calls made with the key itself.
    assert_eq!(u["uses_before_leak"], 6);
    assert_eq!(u["uses_after_leak"], 12 + 4);
    assert_eq!(u["first_use_after_leak"], time(at(6, 9) + 30 * 60_000));
    assert_eq!(u["last_use"], time(at(19, 9) + 30 * 60_000));
    assert_eq!(strs(&u["new_sources"]["ips"]), [ATTACKER_IP]);
    assert_eq!(strs(&u["new_sources"]["networks"]), ["185.220.101.0/24"]);
    assert_eq!(strs(&u["new_sources"]["clients"]), ["Boto3"]);
    assert_eq!(strs(&u["known_sources"]["ips"]), [KNOWN_IP]);
    assert_eq!(strs(&u["known_sources"]["clients"]), ["aws-cli"]);
    assert_eq!(u["apis_after_leak"]["secretsmanager:GetSecretValue"], 1);
    assert_eq!(u["apis_after_leak"]["sts:AssumeRole"], 1);
    assert!(strs(&u["resources_after_leak"]).contains(&"secret:prod/db".to_string()));
    let sessions = u["derived_sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    let s1 = &sessions[0];
    assert_eq!(s1["access_key_id"], sc.session1.as_str());
    assert_eq!(s1["via"], "AssumeRole");
    assert_eq!(s1["parent"], sc.used.id.as_str());
    assert_eq!(s1["depth"], 1);
    assert_eq!(
        s1["role_arn"],
        format!("arn:aws:iam::{ACCOUNT}:role/ops-admin")
    );
    assert_eq!(s1["session_name"], "x");
    assert_eq!(s1["issued_at"], time(sc.attack_ms + 3 * 60_000));
    assert_eq!(s1["issued_from"], ATTACKER_IP);
    assert_eq!(s1["uses"], 5);
    assert_eq!(s1["apis"]["iam:CreateUser"], 1);
    assert_eq!(s1["apis"]["iam:CreateAccessKey"], 1);
    assert_eq!(strs(&s1["source_ips"]), [ATTACKER_IP]);
    assert!(strs(&s1["resources"]).contains(&"user:backdoor".to_string()));
    let s2 = &sessions[1];
    assert_eq!(s2["access_key_id"], sc.session2.as_str());
    assert_eq!(s2["parent"], sc.session1.as_str());
    assert_eq!(s2["depth"], 2);
    assert_eq!(
        s2["role_arn"],
        format!("arn:aws:iam::{ACCOUNT}:role/data-reader")
    );
    assert_eq!(s2["uses"], 1);
    assert_eq!(s2["apis"]["s3:GetObject"], 1);
    assert_eq!(strs(&s2["resources"]), ["s3://prod-data"]);
    // The detect engine's alerts on the identity and its sessions after the leak.
    let alerts = u["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty(), "no alerts: {u:#}");
    for a in alerts {
        assert!(a["time"].as_str().unwrap() >= time(sc.used.leaked_ms).as_str());
        let k = a["access_key_id"].as_str().unwrap_or("");
        assert!(
            k == sc.used.id
                || k == sc.session1
                || k == sc.session2
                || a["principal"] == format!("arn:aws:iam::{ACCOUNT}:user/deploy-bot"),
            "{a}"
        );
    }
    assert!(
        alerts
            .iter()
            .any(|a| a["access_key_id"] == sc.session1.as_str()),
        "no alert on the assumed-role session: {alerts:#?}"
    );
    assert_eq!(u["verdict"], "used from new sources — treat as compromised");
    assert_eq!(u["action"]["kind"], "revoke_now");
    assert_eq!(
        u["action"]["commands"][0],
        format!("keytrail revoke aws-key --access-key-id {}", sc.used.id)
    );
    // Both assumed roles get their older sessions revoked.
    let cmds = strs(&u["action"]["commands"]);
    assert_eq!(cmds.len(), 3, "{cmds:#?}");
    assert!(cmds[1].contains("--role-name data-reader"), "{cmds:#?}");
    assert!(cmds[2].contains("--role-name ops-admin"), "{cmds:#?}");
    assert!(cmds[2].contains("AWSRevokeOlderSessions"), "{cmds:#?}");
    // The sessions denied are those issued before the run: its time is the cut-off.
    let cut = cmds[2]
        .split("aws:TokenIssueTime\":\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no cut-off: {}", cmds[2]));
    let run_started = time(started_ms);
    assert!(
        cut.len() >= 19 && cut[..19] >= run_started[..19] && cut.starts_with("20"),
        "cut-off {cut} is not the run's time (started {run_started})"
    );
    assert!(
        u["action"]["clean"][0]
            .as_str()
            .unwrap()
            .contains(&sc.used.commit)
    );
    // The logs have a hole after the leak.
    let gap_note = format!(
        "no CloudTrail events from {} to {}",
        time(sc.gap.0 - 55 * 60_000),
        time(sc.gap.1 + 5 * 60_000)
    );
    assert!(
        strs(&u["notes"]).iter().any(|n| n.starts_with(&gap_note)),
        "{gap_note}: {:#}",
        u["notes"]
    );

    // The key never used after its leak.
    let n = record(&v, &sc.unused.id);
    assert_eq!(n["leaked_at"], time(sc.unused.leaked_ms));
    assert_eq!(n["identity"]["name"], "report-job");
    assert_eq!(n["identity"]["owner"], "UNOWNED");
    assert_eq!(n["status"], "active");
    assert_eq!(n["live"], true);
    assert_eq!(strs(&n["privilege"]), ["read-only"]);
    assert_eq!(strs(&n["reach"]["buckets_read"]), ["reports"]);
    assert!(n["reach"]["buckets_write"].as_array().unwrap().is_empty());
    assert_eq!(n["used_after_leak"], false);
    assert_eq!(n["uses_after_leak"], 0);
    assert_eq!(n["uses_before_leak"], 8);
    assert_eq!(n["first_use_after_leak"], Value::Null);
    assert_eq!(n["last_use"], time(at(7, 12) - 30 * 60_000));
    assert!(n["derived_sessions"].as_array().unwrap().is_empty());
    assert!(n["alerts"].as_array().unwrap().is_empty());
    assert_eq!(n["verdict"], "not used since the leak");
    assert_eq!(n["action"]["kind"], "rotate");
    assert_eq!(
        n["action"]["commands"][0],
        format!("keytrail rotate aws-key --access-key-id {}", sc.unused.id)
    );

    // The key deleted before it leaked.
    let d = record(&v, &sc.deleted.id);
    assert_eq!(d["leaked_at"], time(sc.deleted.leaked_ms));
    assert_eq!(d["identity"]["from"], "cloudtrail");
    assert_eq!(
        d["identity"]["arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/old-ci")
    );
    assert_eq!(d["status"], "deleted");
    assert_eq!(d["live"], false);
    assert_eq!(d["status_changes"][0]["status"], "deleted");
    assert_eq!(d["status_changes"][0]["time"], time(sc.deleted_at_ms));
    assert_eq!(
        d["status_changes"][0]["by"],
        format!("arn:aws:iam::{ACCOUNT}:user/admin")
    );
    assert_eq!(d["used_after_leak"], false);
    assert_eq!(d["uses_before_leak"], 3);
    assert_eq!(d["verdict"], "inactive/deleted");
    assert_eq!(d["action"]["kind"], "remove_from_source");
    assert!(d["action"]["commands"].as_array().unwrap().is_empty());
    assert!(
        strs(&d["notes"])
            .iter()
            .any(|n| n.contains("before it leaked"))
    );

    // The key of another account.
    let o = record(&v, &sc.other_account.id);
    assert_eq!(o["identity"]["account_id"], OTHER_ACCOUNT);
    assert_eq!(o["identity"]["from"], "key id");
    assert_eq!(o["identity"]["arn"], Value::Null);
    assert_eq!(o["status"], "unknown");
    assert_eq!(o["used_after_leak"], false);
    assert!(
        strs(&o["notes"])
            .iter()
            .any(|n| n.contains("another account")),
        "{:#}",
        o["notes"]
    );

    // The plan: the CI key found in a GitHub workflow goes to OIDC.
    let plan = &v["plan"];
    assert_eq!(plan["long_lived"]["aws_access_keys_active"], 2);
    assert_eq!(plan["long_lived"]["aws_access_keys_leaked"], 4);
    assert_eq!(plan["long_lived"]["total"], 4);
    let item = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["credential_id"] == sc.used.id.as_str())
        .unwrap();
    assert_eq!(item["replacement"], "github-oidc-role");
    assert!(strs(&item["used_by"]).contains(&"github-actions".to_string()));
    assert_eq!(
        item["trust_policy"]["Statement"][0]["Action"],
        "sts:AssumeRoleWithWebIdentity"
    );
    let deleted_item = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["credential_id"] == sc.other_account.id.as_str())
        .unwrap();
    assert_eq!(deleted_item["replacement"], "delete-unused-key");

    // Coverage.
    assert_eq!(v["coverage"]["gaps"].as_array().unwrap().len(), 1);
    assert_eq!(v["summary"]["credentials"], 4);
    assert_eq!(v["summary"]["used_after_leak"], 1);
    assert_eq!(v["summary"]["compromised"], 1);

    // JSONL: the same records, one per line, in the same order.
    let r = t.run(&[
        "exposure",
        "--findings",
        "findings.json",
        "--snapshot",
        sc.snapshot.to_str().unwrap(),
        "--cloudtrail",
        sc.trail.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["access_key_id"], sc.used.id.as_str());
    assert_eq!(lines[0]["uses_after_leak"], 16);
    // Human: the verdict and the command to run; never the secret.
    let r = t.run(&[
        "exposure",
        "--findings",
        "findings.json",
        "--snapshot",
        sc.snapshot.to_str().unwrap(),
        "--cloudtrail",
        sc.trail.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("treat as compromised"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!(
        "$ keytrail revoke aws-key --access-key-id {}",
        sc.used.id
    )));
    for k in [&sc.used, &sc.unused, &sc.deleted, &sc.other_account] {
        assert!(!r.all().contains(&k.secret), "secret printed");
    }
}

#[test]
fn findings_without_dates_need_leaked_at() {
    let t = CliTest::new();
    let sc = write_exposure_scenario(&t.root().join("sc"), 9).expect("scenario");
    // The same key in a plain file: no date in its provenance.
    t.write(
        "plain/.env",
        &format!(
            "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            sc.used.id, sc.used.secret
        ),
    );
    let r = t.run(&["scan", "--format", "jsonl", "-o", "f.jsonl", "plain"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let base = [
        "exposure",
        "--findings",
        "f.jsonl",
        "--snapshot",
        sc.snapshot.to_str().unwrap(),
        "--cloudtrail",
        sc.trail.to_str().unwrap(),
        "--format",
        "json",
    ];
    let r = t.run(&base);
    assert_eq!(
        r.code, 0,
        "no date, no claim of use after a leak: {}",
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let u = record(&v, &sc.used.id);
    assert_eq!(u["leaked_at"], Value::Null);
    assert_eq!(u["used_after_leak"], Value::Null);
    assert_eq!(u["verdict"], "leak time unknown");
    assert!(strs(&u["notes"]).iter().any(|n| n.contains("--leaked-at")));
    assert!(u["new_sources"]["ips"].as_array().unwrap().is_empty());
    // With --leaked-at the join happens.
    let mut args = base.to_vec();
    let when = time(sc.used.leaked_ms);
    args.extend_from_slice(&["--leaked-at", &when]);
    let r = t.run(&args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let u = record(&v, &sc.used.id);
    assert_eq!(u["leaked_at"], when);
    assert_eq!(
        u["leaked_at_from"],
        "--leaked-at (no date in its locations)"
    );
    assert_eq!(u["uses_after_leak"], 16);
    assert_eq!(u["verdict"], "used from new sources — treat as compromised");
    // A key-specific override wins over provenance.
    let mut args = base.to_vec();
    let kv = format!("{}={}", sc.used.id, time(at(8, 0)));
    args.extend_from_slice(&["--leaked-at", &kv]);
    let r = t.run(&args);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(record(&v, &sc.used.id)["uses_after_leak"], 10);
    assert_eq!(
        record(&v, &sc.used.id)["verdict"],
        "used only from known sources"
    );
}

#[test]
fn key_without_user_and_malformed_findings() {
    let t = CliTest::new();
    let sc = write_exposure_scenario(&t.root().join("sc"), 3).expect("scenario");
    let nobody = keytrail_testkit::exposure::key_for_account("AKIA", ACCOUNT.parse().unwrap(), 999);
    let line = |id: &str, extra: &str| {
        format!(
            r#"{{"rule_id":"aws.access_key.pair","rule_name":"AWS","confidence":"high","severity":"critical","fingerprint":"{id}fp","secret_redacted":"abcd…yz","context":{{"id":"{id}"}},"path":"x.env","line":1,"column":1,"offset":0,"snippet":"x","source":"git","repository":"r","blob":"b","commit":"c1","author":"a","author_date":"2024-03-12T00:00:00Z","summary":"s","in_head":true,"state":"committed","occurrences":1{extra}}}"#
        )
    };
    t.write(
        "f.jsonl",
        &format!(
            "{}\n{{not json\n{}\n",
            line(&nobody, ""),
            line(&sc.unused.id, "")
        ),
    );
    let r = t.run(&[
        "exposure",
        "--findings",
        "f.jsonl",
        "--snapshot",
        sc.snapshot.to_str().unwrap(),
        "--cloudtrail",
        sc.trail.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The bad line is named with its position; the other lines are joined.
    assert!(r.stderr.contains("f.jsonl:2:"), "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let n = record(&v, &nobody);
    assert_eq!(n["status"], "deleted");
    assert_eq!(n["identity"]["from"], "none");
    assert!(
        strs(&n["notes"])
            .iter()
            .any(|x| x.contains("no IAM user in the snapshot has this key"))
    );
    assert_eq!(record(&v, &sc.unused.id)["identity"]["name"], "report-job");

    // A JSON document that does not parse: exit 2, file, line and column.
    t.write(
        "bad.json",
        "{\n  \"version\": 1,\n  \"findings\": [ {\"rule_id\": }\n]}\n",
    );
    let r = t.run(&["exposure", "--findings", "bad.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.json:3:"), "{}", r.stderr);
    // Not a findings file at all.
    t.write("other.json", "{\"alerts\": []}\n");
    let r = t.run(&["exposure", "--findings", "other.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("other.json"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("other.json:1:1: neither a `findings` document"),
        "{}",
        r.stderr
    );
    let r = t.run(&["exposure", "--findings", "missing.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.json"), "{}", r.stderr);
}

/// `--live`: the account is collected through the AWS API (moto serving the
/// scenario's users, roles, keys and buckets, reached through `AWS_ENDPOINT_URL`)
/// and every record resolves as with the snapshot, except that its identity says
/// `live`. Fails when Python with moto and boto3 is missing.
#[test]
#[cfg(feature = "collect-aws")]
fn live_collection_resolves_keys_as_the_snapshot_does() {
    use std::process::Stdio;
    let t = CliTest::new();
    let sc = scenario(&t);
    let (mut child, served) = crate::start_snapshot_moto(&sc.snapshot, ACCOUNT);
    let endpoint = served["endpoint"].as_str().unwrap().to_string();
    assert_eq!(served["created"]["keys"].as_array().unwrap().len(), 2);

    let (snap_run, by_snapshot) = exposure(&t, &sc, &[]);
    assert_eq!(snap_run.code, 1, "{}", snap_run.stderr);
    let args = [
        "exposure",
        "--findings",
        "findings.json",
        "--live",
        "--cloudtrail",
        sc.trail.to_str().unwrap(),
        "--owners",
        sc.owners.to_str().unwrap(),
        "--format",
        "json",
    ];
    let live = |endpoint: &str| {
        let mut c = t.command(&args);
        crate::aws_test_env(&mut c, endpoint);
        let out = c.stdin(Stdio::null()).output().expect("run keytrail");
        crate::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let r = live(&endpoint);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let by_live: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
    let a = by_snapshot["records"].as_array().unwrap();
    let b = by_live["records"].as_array().unwrap();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        // Same order, same identity, status, privilege, reach and verdict.
        assert_eq!(x["access_key_id"], y["access_key_id"]);
        for f in [
            "status",
            "live",
            "privilege",
            "reach",
            "verdict",
            "uses_after_leak",
        ] {
            assert_eq!(
                x[f], y[f],
                "{} {f}: snapshot {} live {}",
                x["access_key_id"], x[f], y[f]
            );
        }
        for f in [
            "arn",
            "name",
            "account_id",
            "owner",
            "purpose",
            "environment",
        ] {
            assert_eq!(
                x["identity"][f], y["identity"][f],
                "{} identity.{f}",
                x["access_key_id"]
            );
        }
        let from = if x["identity"]["from"] == "snapshot" {
            "live"
        } else {
            x["identity"]["from"].as_str().unwrap()
        };
        assert_eq!(y["identity"]["from"], from);
    }
    let u = record(&by_live, &sc.used.id);
    assert_eq!(u["identity"]["name"], "deploy-bot");
    assert_eq!(u["identity"]["from"], "live");
    assert_eq!(strs(&u["privilege"]), ["write"]);
    assert_eq!(strs(&u["reach"]["buckets_read"]), ["prod-data"]);
    assert_eq!(
        strs(&u["reach"]["assumable_roles"]),
        [format!("arn:aws:iam::{ACCOUNT}:role/ops-admin")]
    );
    assert_eq!(
        record(&by_live, &sc.unused.id)["identity"]["name"],
        "report-job"
    );

    // An endpoint that answers nothing: IAM cannot be read, the run fails (exit 2)
    // naming why, instead of treating every key as unknown.
    drop(child.stdin.take());
    let _ = child.wait();
    let r = live(&endpoint);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("live: IAM could not be read"),
        "{}",
        r.stderr
    );
}

/// Keys shipped in a container image: `leaked_at` is the creation time of the
/// layer that holds the file, or of the config history entry that recorded it
/// (each history entry's `created`), as `keytrail scan --image` records them.
#[test]
fn image_layer_and_config_times_are_the_leak_times() {
    use crate::image::{Umoci, run, tools};
    use std::process::Command;
    tools(&["umoci"]);
    let t = CliTest::new();
    let sc = write_exposure_scenario(&t.root().join("sc"), 5).expect("scenario");
    let img = Umoci::new(t.root(), "v1");
    img.write(
        "app/.env",
        &format!(
            "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            sc.used.id, sc.used.secret
        ),
    );
    img.layer_at("COPY app /app", "2024-03-08T10:00:00Z");
    // A RUN step that passed the other key on its command line: recorded in the
    // config's history (no layer) with its own time, before the image's.
    run(Command::new("umoci").args([
        "config",
        "--image",
        &img.image(),
        "--created",
        "2024-03-10T00:00:00Z",
        "--history.created",
        "2024-03-09T12:00:00Z",
        "--history.created_by",
        &format!(
            "RUN AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws s3 cp s3://reports/x /tmp/",
            sc.unused.id, sc.unused.secret
        ),
    ]));
    let r = t.run(&[
        "scan",
        "--image",
        &img.reference(),
        "--format",
        "json",
        "-o",
        "image.json",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let findings = std::fs::read_to_string(t.root().join("image.json")).unwrap();
    assert!(
        findings.contains(r#""created": "2024-03-08T10:00:00Z""#),
        "{findings}"
    );
    let r = t.run(&[
        "exposure",
        "--findings",
        "image.json",
        "--snapshot",
        sc.snapshot.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
    let layer_ms = keytrail_detect::time::parse_rfc3339_ms("2024-03-08T10:00:00Z").unwrap();
    let u = record(&v, &sc.used.id);
    assert_eq!(u["leaked_at"], time(layer_ms), "{u:#}");
    let w = &u["leaked_where"][0];
    assert_eq!(w["source"], "image");
    assert!(w["layer"].as_str().unwrap().starts_with("sha256:"), "{w}");
    assert_eq!(w["time"], time(layer_ms));
    assert!(
        u["leaked_at_from"]
            .as_str()
            .unwrap()
            .contains("creation time"),
        "{}",
        u["leaked_at_from"]
    );
    assert_eq!(u["identity"]["name"], "deploy-bot");
    let config_ms = keytrail_detect::time::parse_rfc3339_ms("2024-03-09T12:00:00Z").unwrap();
    let n = record(&v, &sc.unused.id);
    assert_eq!(n["leaked_at"], time(config_ms), "{n:#}");
    assert_eq!(n["leaked_where"][0]["layer"], "config");
    assert_eq!(n["identity"]["name"], "report-job");
    for k in [&sc.used, &sc.unused] {
        assert!(!r.all().contains(&k.secret), "secret printed");
    }
}

/// Google Cloud: service-account key files committed on known dates (one with
/// its members sorted), the project's snapshot as `collect gcp` writes it, and
/// a month of audit logs in a Cloud Storage sink's layout. Each key is joined
/// with its service account, roles and use after the leak.
#[test]
fn gcp_service_account_keys_are_joined_with_the_audit_logs() {
    use keytrail_testkit::exposure::{GCP_OTHER_PROJECT, GCP_PROJECT, write_gcp_exposure_scenario};
    let t = CliTest::new();
    let sc = write_gcp_exposure_scenario(&t.root().join("gsc"), 7).expect("scenario");
    scan_history(&t, &sc.repo);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "exposure",
            "--findings",
            "findings.json",
            "--snapshot",
            sc.snapshot.to_str().unwrap(),
            "--owners",
            sc.owners.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let r = t.run(&args);
        let v: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
        (r, v)
    };
    let (r, v) = run(&["--logs", sc.logs.to_str().unwrap(), "--plan"]);
    assert_eq!(r.code, 1, "a key was used after it leaked: {}", r.stderr);
    assert_eq!(v["records"].as_array().unwrap().len(), 4, "{v:#}");

    // Used by an attacker a day after the leak.
    let u = record(&v, &sc.used.id);
    assert_eq!(u["credential"], "gcp_service_account_key");
    assert_eq!(u["verdict"], "used from new sources — treat as compromised");
    assert_eq!(u["identity"]["name"], sc.used.user.as_str());
    assert_eq!(u["identity"]["account_id"], GCP_PROJECT);
    assert_eq!(
        u["identity"]["arn"],
        format!("projects/{GCP_PROJECT}/serviceAccounts/{}", sc.used.user)
    );
    assert_eq!(u["identity"]["from"], "snapshot");
    assert_eq!(u["identity"]["owner"], "data-platform");
    assert_eq!(
        (u["status"].as_str(), u["live"].as_bool()),
        (Some("active"), Some(true))
    );
    assert_eq!(strs(&u["privilege"]), ["admin"]);
    assert_eq!(
        strs(&u["reach"]["roles"]),
        ["roles/editor", "roles/iam.serviceAccountTokenCreator"]
    );
    let acts_as = strs(&u["reach"]["impersonates"]);
    assert_eq!(acts_as.len(), 3, "{acts_as:?}");
    assert!(acts_as.contains(&sc.unused.user), "{acts_as:?}");
    assert_eq!(u["leaked_at"], time(sc.used.leaked_ms));
    assert_eq!(
        strs(&u["new_sources"]["ips"]),
        [keytrail_testkit::exposure::ATTACKER_IP]
    );
    assert_eq!(
        strs(&u["known_sources"]["ips"]),
        [keytrail_testkit::exposure::KNOWN_IP]
    );
    // The daily CI call half an hour after the commit, then the attacker's.
    assert_eq!(
        u["first_use_after_leak"],
        time(sc.used.leaked_ms + 30 * 60_000)
    );
    assert_eq!(u["apis_after_leak"]["storage:storage.objects.get"], 1);
    let res = strs(&u["resources_after_leak"]);
    assert!(
        res.iter().any(|r| r.ends_with("/objects/customers.csv")),
        "{res:?}"
    );
    assert_eq!(u["action"]["kind"], "revoke_now");
    let cmds = strs(&u["action"]["commands"]);
    assert_eq!(
        cmds[0],
        format!(
            "gcloud iam service-accounts keys disable {} --iam-account {} --project {GCP_PROJECT}",
            sc.used.id, sc.used.user
        )
    );
    assert!(
        cmds[1].starts_with("gcloud iam service-accounts keys delete "),
        "{cmds:?}"
    );

    // Used before its leak only; its file had its members sorted.
    let n = record(&v, &sc.unused.id);
    assert_eq!(n["verdict"], "not used since the leak");
    assert_eq!(n["used_after_leak"], false);
    assert_eq!(n["uses_before_leak"], 6);
    assert_eq!(strs(&n["privilege"]), ["write"]);
    assert!(
        n["rule_ids"]
            .to_string()
            .contains("gcp.service_account.key.sorted"),
        "{n:#}"
    );
    assert_eq!(n["action"]["kind"], "rotate");

    // Deleted by an admin before it leaked: the audit log says so, and the
    // snapshot's key list no longer has it.
    let d = record(&v, &sc.deleted.id);
    assert_eq!(d["status"], "deleted");
    assert_eq!(d["verdict"], "inactive/deleted");
    assert_eq!(d["status_changes"][0]["by"], "admin@example.com");
    assert_eq!(d["status_changes"][0]["time"], time(sc.deleted_at_ms));
    assert_eq!(d["identity"]["name"], sc.deleted.user.as_str());
    assert_eq!(d["identity"]["from"], "key file");
    assert_eq!(d["action"]["kind"], "remove_from_source");

    // A key of a project the snapshot does not describe.
    let o = record(&v, &sc.other_project.id);
    assert_eq!(o["identity"]["account_id"], GCP_OTHER_PROJECT);
    assert_eq!(o["status"], "unknown");
    assert!(
        o["notes"]
            .to_string()
            .contains("which the snapshot does not describe"),
        "{o:#}"
    );

    // The plan: a keyless replacement for each leaked key.
    let plan = &v["plan"];
    assert_eq!(plan["long_lived"]["gcp_service_account_keys_leaked"], 4);
    let item = plan_item(&v, &sc.used.id);
    assert_eq!(item["replacement"], "gcp-workload-identity-federation");
    assert!(item["how"].as_str().unwrap().contains(&sc.used.user));
    assert!(v["coverage"]["events_by_cloud"]["gcp"].as_u64().unwrap() > 500);

    // Without Google Cloud's audit logs nothing is said about use.
    let (r, v) = run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let u = record(&v, &sc.used.id);
    assert_eq!(u["verdict"], "no audit log for this credential");
    assert_eq!(u["used_after_leak"], Value::Null);
    assert!(
        u["notes"].to_string().contains("no Google Cloud audit log"),
        "{u:#}"
    );
    assert_eq!(u["identity"]["owner"], "data-platform");

    // Human output names the roles.
    let r = t.run(&[
        "exposure",
        "--findings",
        "findings.json",
        "--snapshot",
        sc.snapshot.to_str().unwrap(),
        "--logs",
        sc.logs.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("reach: roles roles/editor, roles/iam.serviceAccountTokenCreator"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("BEGIN PRIVATE KEY"), "{}", r.stdout);
}

/// Entra ID: client secrets committed next to their application and tenant
/// ids (and one alone), the tenant's applications as Graph lists them (each
/// secret's `keyId` and `hint`), role assignments, and a month of
/// service-principal sign-ins. A secret is tied to its key by its first
/// three characters, then joined with the sign-ins that name the key.
#[test]
fn azure_client_secrets_are_tied_to_their_key_by_the_hint() {
    use keytrail_testkit::exposure::write_azure_exposure_scenario;
    let t = CliTest::new();
    let sc = write_azure_exposure_scenario(&t.root().join("asc"), 11).expect("scenario");
    scan_history(&t, &sc.repo);
    let r = t.run(&[
        "exposure",
        "--findings",
        "findings.json",
        "--snapshot",
        sc.snapshot.to_str().unwrap(),
        "--owners",
        sc.owners.to_str().unwrap(),
        "--logs",
        sc.logs.to_str().unwrap(),
        "--plan",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "a secret was used after it leaked: {}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 4, "{v:#}");
    let by_place = |path: &str| {
        recs.iter()
            .find(|r| r["leaked_where"][0]["path"] == path)
            .unwrap_or_else(|| panic!("no record leaked at {path}: {v:#}"))
    };

    // Tied to its key, used by an attacker (sign-ins with the key id in upper case).
    let u = record(&v, &sc.used.id);
    assert_eq!(u["credential"], "azure_client_secret");
    assert_eq!(u["verdict"], "used from new sources — treat as compromised");
    assert_eq!(u["identity"]["name"], "deploy-automation");
    assert_eq!(
        u["identity"]["arn"],
        format!("entra:application/{}", sc.app)
    );
    assert_eq!(u["identity"]["account_id"], sc.tenant.as_str());
    assert_eq!(u["identity"]["owner"], "cloud-platform");
    assert_eq!(u["status"], "active");
    assert_eq!(strs(&u["privilege"]), ["admin"]);
    assert_eq!(strs(&u["reach"]["roles"]).len(), 1);
    assert!(strs(&u["reach"]["roles"])[0].starts_with("Contributor on /subscriptions/"));
    assert_eq!(
        strs(&u["new_sources"]["ips"]),
        [keytrail_testkit::exposure::ATTACKER_IP]
    );
    assert_eq!(u["uses_after_leak"], 3 + 14, "{u:#}");
    assert!(
        u["notes"]
            .to_string()
            .contains("the only client secret of the application"),
        "{u:#}"
    );
    assert_eq!(
        strs(&u["action"]["commands"]),
        [format!(
            "az ad app credential delete --id {} --key-id {}",
            sc.app, sc.used.id
        )]
    );
    assert!(
        !r.stdout.contains(&sc.used.secret),
        "the secret is never printed"
    );

    // Used before its leak only.
    let n = record(&v, &sc.unused.id);
    assert_eq!(n["verdict"], "not used since the leak");
    assert_eq!(n["uses_before_leak"], 6);
    assert_eq!(strs(&n["privilege"]), ["read-only"]);

    // Removed from its application: no listed secret has its first characters.
    let d = by_place("old/azure.env");
    assert_eq!(d["status"], "deleted");
    assert_eq!(d["verdict"], "inactive/deleted");
    assert_eq!(
        d["identity"]["arn"],
        format!("entra:application/{}", sc.app)
    );
    assert_eq!(d["action"]["kind"], "remove_from_source");

    // Alone: no application id, so no key and no sign-ins.
    let b = by_place("notes/todo.md");
    assert_eq!(b["verdict"], "no audit log for this credential");
    assert_eq!(b["identity"]["from"], "none");
    assert!(
        b["notes"]
            .to_string()
            .contains("no application (client) id"),
        "{b:#}"
    );

    let plan = &v["plan"];
    assert_eq!(plan["long_lived"]["azure_client_secrets_leaked"], 4);
    let item = plan_item(&v, &sc.used.id);
    assert_eq!(item["replacement"], "azure-managed-identity");
    assert!(v["coverage"]["events_by_cloud"]["entra"].as_u64().unwrap() > 480);
}
