//! `scan` over structured exports: a Slack workspace export, a
//! Postman collection and environment, Jira issues and a Confluence page.
//! Findings carry the record's provenance (channel, user, time; request
//! path; issue key and author; page), Postman placeholders are not
//! reported, and a truncated export is an error that does not stop the run.

use crate::{CliTest, fake};
use keytrail_testkit::exports;
use serde_json::Value;

fn json(r: &crate::Run) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    doc["findings"].as_array().unwrap().clone()
}

/// The location of the finding of `secret` (by its redacted form) at `path`.
fn at<'a>(findings: &'a [Value], secret: &str, path: &str) -> &'a Value {
    let redacted = keytrail_types::redact(secret.as_bytes());
    findings
        .iter()
        .filter(|f| f["secret_redacted"] == redacted.as_str())
        .flat_map(|f| f["locations"].as_array().unwrap())
        .find(|l| l["path"] == path)
        .unwrap_or_else(|| panic!("no finding of {redacted} at {path}: {findings:#?}"))
}

#[test]
fn slack_postman_jira_confluence_findings_carry_record_provenance() {
    let t = CliTest::new();
    let mut fs = fake::secrets();
    let slack = exports::slack_export(&mut fs);
    for (name, bytes) in &slack.files {
        let path = t.root().join("slack").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let p = exports::postman(&mut fs);
    t.write("postman/Shop API.postman_collection.json", &p.collection);
    t.write("postman/Prod.postman_environment.json", &p.environment);
    let j = exports::jira(&mut fs);
    t.write("jira/search.json", &j.json);
    let (page, page_token) = exports::confluence_page(&mut fs);
    t.write("confluence/Ops/Deploy-runbook_98765.html", &page);
    let (jira_xml, jira_xml_token, _) = exports::jira_backup(&mut fs);
    t.write("jira/backup/entities.xml", &jira_xml);

    let r = t.run(&[
        "scan",
        "--format",
        "json",
        "slack",
        "postman",
        "jira",
        "confluence",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    for s in [
        &slack.bot_token,
        &p.bearer,
        &p.env_token,
        &j.description_token,
    ] {
        assert!(!r.all().contains(s.as_str()), "secret printed");
    }
    let f = json(&r);

    let l = at(&f, &slack.bot_token, "slack/general/2024-03-04.json#/1");
    assert_eq!(l["source"], "export");
    assert_eq!(l["export"], "slack");
    assert_eq!(l["container"], "#general");
    assert_eq!(l["author"], "Bob Builder (U02BOB)");
    assert_eq!(l["time"], "2024-03-04T09:30:00.000200Z");
    assert_eq!(l["record"], "/1");
    let l = at(&f, &slack.github_token, "slack/deploys/2024-03-05.json#/0");
    assert_eq!(l["author"], "Ada Lovelace (U01ADA)");
    // Slack's `\/` escapes undone: the webhook URL is found.
    at(&f, &slack.webhook, "slack/deploys/2024-03-05.json#/0");

    let c = "postman/Shop API.postman_collection.json";
    let l = at(&f, &p.bearer, &format!("{c}#/item/0/item/0/item/0"));
    assert_eq!(l["export"], "postman_collection");
    assert_eq!(l["item"], "Admin/Users/Create user");
    assert_eq!(l["container"], "Shop API");
    let l = at(&f, &p.header_key, &format!("{c}#/item/1/item/0"));
    assert_eq!(l["item"], "Orders/List orders");
    at(&f, &p.stripe, &format!("{c}#/item/1/item/0"));
    at(&f, &p.variable_password, c);
    let l = at(
        &f,
        &p.env_token,
        "postman/Prod.postman_environment.json#/values",
    );
    assert_eq!(l["export"], "postman_environment");
    assert_eq!(l["container"], "Prod");
    // Placeholders and vault references are not secrets.
    for f in &f {
        let red = f["secret_redacted"].as_str().unwrap();
        assert!(!red.contains('{'), "placeholder reported: {f}");
    }
    let rules: Vec<&str> = f.iter().map(|f| f["rule_id"].as_str().unwrap()).collect();
    for id in [
        "postman.auth.credential",
        "postman.header.credential",
        "postman.variable.secret",
    ] {
        assert!(rules.contains(&id), "{id} not in {rules:?}");
    }

    let l = at(&f, &j.description_token, "jira/search.json#/issues/0");
    assert_eq!(l["export"], "jira");
    assert_eq!(l["item"], "OPS-7");
    assert_eq!(l["author"], "Ada Lovelace <ada@example.com>");
    let l = at(
        &f,
        &j.comment_key.secret_access_key,
        "jira/search.json#/issues/1/fields/comment/comments/1",
    );
    assert_eq!(l["item"], "OPS-8 comment");
    assert_eq!(l["author"], "Bob Builder <bob@example.com>");
    assert_eq!(l["time"], "2024-03-05T09:30:00.000Z");

    let l = at(
        &f,
        &jira_xml_token,
        "jira/backup/entities.xml#/entity-engine-xml/Issue[@id=10007]",
    );
    assert_eq!(l["item"], "OPS-7");
    assert_eq!(l["author"], "ada");

    let l = at(&f, &page_token, "confluence/Ops/Deploy-runbook_98765.html");
    assert_eq!(l["export"], "confluence");
    assert_eq!(l["item"], "Deploy runbook (id 98765)");
    let line = page.lines().position(|x| x.contains(&page_token)).unwrap() + 1;
    assert_eq!(l["line"], line as u64, "the page's own line");

    // The human report shows the provenance under the location.
    let r = t.run(&["scan", "slack"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("slack, #general, Bob Builder (U02BOB), 2024-03-04T09:30:00.000200Z"),
        "{}",
        r.stdout
    );
}

#[test]
fn truncated_export_is_an_error_and_the_run_goes_on() {
    let t = CliTest::new();
    let mut fs = fake::secrets();
    let p = exports::postman(&mut fs);
    let cut = &p.collection[..p.collection.len() / 2];
    t.write("in/cut.postman_collection.json", cut);
    t.write("in/Prod.postman_environment.json", &p.environment);
    let r = t.run(&["scan", "--format", "json", "in"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("in/cut.postman_collection.json")
            && r.stderr.contains("truncated JSON at line"),
        "{}",
        r.stderr
    );
    at(
        &json(&r),
        &p.env_token,
        "in/Prod.postman_environment.json#/values",
    );
}

/// Terraform state is a file like any other (no record split): the access
/// key pair of an `aws_iam_access_key` resource and a token in a
/// `github_actions_secret` are found at their lines of the state file, a
/// database password with `--min-confidence low`.
#[test]
fn terraform_state_secrets_are_found_at_their_lines() {
    let t = CliTest::new();
    let mut fs = fake::secrets();
    let key = fs.aws_key_pair();
    let pat = fs.github_classic();
    let db = format!("Pw{}7", fs.chars(keytrail_testkit::secrets::ALNUM, 20));
    let state = serde_json::json!({
        "version": 4, "terraform_version": "1.7.5", "serial": 12, "lineage": "3f1c0e2a",
        "outputs": {},
        "resources": [
            {"mode": "managed", "type": "aws_iam_access_key", "name": "ci",
             "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
             "instances": [{"schema_version": 0, "attributes": {
                "id": key.access_key_id, "user": "ci-bot", "secret": key.secret_access_key,
                "status": "Active"}, "sensitive_attributes": []}]},
            {"mode": "managed", "type": "aws_db_instance", "name": "main",
             "instances": [{"attributes": {"username": "app", "password": db, "port": 5432}}]},
            {"mode": "managed", "type": "github_actions_secret", "name": "deploy",
             "instances": [{"attributes": {"secret_name": "DEPLOY", "plaintext_value": pat}}]}
        ]
    });
    let text = serde_json::to_string_pretty(&state).unwrap();
    t.write("infra/terraform.tfstate", &text);
    let line_of = |s: &str| text.lines().position(|l| l.contains(s)).unwrap() as u64 + 1;
    let r = t.run(&["scan", "--format", "json", "infra"]);
    assert_eq!(r.code, 1, "{r:?}");
    let f = json(&r);
    let pair = f
        .iter()
        .find(|f| f["rule_id"] == "aws.access_key.pair")
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!(pair["confidence"], "high");
    assert!(pair["context"].to_string().contains(&key.access_key_id));
    let l = at(&f, &pat, "infra/terraform.tfstate");
    assert_eq!(l["line"], line_of(&pat));
    assert_eq!(l["source"], "file");
    assert!(!r.all().contains(&key.secret_access_key) && !r.all().contains(&pat));
    let r = t.run(&[
        "scan",
        "--format",
        "json",
        "--min-confidence",
        "low",
        "infra",
    ]);
    let low = json(&r);
    let l = at(&low, &db, "infra/terraform.tfstate");
    assert_eq!(l["line"], line_of(&db));
}
