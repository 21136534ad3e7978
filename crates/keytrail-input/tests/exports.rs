//! Structured exports split into records: Slack workspace exports (as a
//! directory and zipped), Postman collections and environments, Jira REST
//! JSON, Confluence HTML pages; and bad input (truncated JSON, an export
//! too large to split). Fixtures come from `keytrail_testkit::exports`, with
//! fake secrets generated at test time.

mod common;

use common::{Got, Outcome, scan, scan_dir, write, zip};
use keytrail_input::{FsOptions, Origin};
use keytrail_testkit::exports;
use keytrail_testkit::secrets::FakeSecrets;
use keytrail_types::ExportOrigin;

fn fakes() -> FakeSecrets {
    FakeSecrets::new(rand_seed())
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn export_origin(got: &Got) -> &ExportOrigin {
    match &got.origin {
        Origin::Export(e) => e,
        other => panic!("{}: not an export record: {other:?}", got.path),
    }
}

fn record<'a>(out: &'a Outcome, path: &str) -> (&'a ExportOrigin, String) {
    let got = out
        .blobs
        .get(path)
        .unwrap_or_else(|| panic!("no blob {path}; have {:?}", out.paths()));
    (
        export_origin(got),
        String::from_utf8(got.bytes.clone()).unwrap(),
    )
}

fn check_slack(out: &Outcome, prefix: &str, s: &exports::SlackExport) {
    let (o, text) = record(out, &format!("{prefix}general/2024-03-04.json#/1"));
    assert_eq!(o.export, "slack");
    assert_eq!(o.container.as_deref(), Some("#general"));
    assert_eq!(o.author.as_deref(), Some("Bob Builder (U02BOB)"));
    assert_eq!(o.time.as_deref(), Some("2024-03-04T09:30:00.000200Z"));
    assert!(
        text.contains(&format!("text = use the bot for now: {}", s.bot_token)),
        "{text}"
    );
    // `blocks` repeat the text: not rendered twice.
    assert_eq!(text.matches(&s.bot_token).count(), 1, "{text}");
    let (o, text) = record(out, &format!("{prefix}deploys/2024-03-05.json#/0"));
    assert_eq!(o.container.as_deref(), Some("#deploys"));
    assert_eq!(o.author.as_deref(), Some("Ada Lovelace (U01ADA)"));
    assert!(
        text.contains(&format!("export GITHUB_TOKEN={}", s.github_token)),
        "{text}"
    );
    // Slack's `\/` escapes are undone, so URLs read as URLs.
    assert!(
        text.contains(&format!("attachments[0].text = notify via {}", s.webhook)),
        "{text}"
    );
    assert!(
        text.contains("files[0].url_private = https://files.slack.com/"),
        "{text}"
    );
    // A user without a real name is shown by user name.
    let (o, _) = record(out, &format!("{prefix}general/2024-03-04.json#/2"));
    assert_eq!(o.author.as_deref(), Some("carol (U03CAROL)"));
    // users.json and channels.json are ordinary files.
    assert!(matches!(
        out.blobs[&format!("{prefix}users.json")].origin,
        Origin::File
    ));
    assert!(
        !out.paths()
            .contains(&format!("{prefix}general/2024-03-04.json").as_str())
    );
}

#[test]
fn slack_export_directory() {
    let dir = tempfile::tempdir().unwrap();
    let s = exports::slack_export(&mut fakes());
    for (name, bytes) in &s.files {
        write(dir.path(), &format!("export/{name}"), bytes);
    }
    let out = scan_dir(dir.path(), &FsOptions::default());
    assert!(out.diags.iter().all(|d| !d.is_error), "{:?}", out.diags);
    check_slack(&out, "export/", &s);
}

#[test]
fn slack_export_zip_names_users_from_its_users_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = exports::slack_export(&mut fakes());
    // Day files first: users.json is read before the members, wherever it is.
    let mut members: Vec<(&str, &[u8])> = s
        .files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    members.reverse();
    write(dir.path(), "workspace.zip", zip(&members));
    let out = scan_dir(dir.path(), &FsOptions::default());
    assert!(out.diags.iter().all(|d| !d.is_error), "{:?}", out.diags);
    check_slack(&out, "workspace.zip!", &s);
}

#[test]
fn postman_collection_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let p = exports::postman(&mut fakes());
    write(
        dir.path(),
        "api/Shop API.postman_collection.json",
        &p.collection,
    );
    // An environment without the conventional name, told by its content.
    write(dir.path(), "api/prod-env.json", &p.environment);
    let out = scan_dir(dir.path(), &FsOptions::default());
    assert!(out.diags.is_empty(), "{:?}", out.diags);
    let c = "api/Shop API.postman_collection.json";
    let (o, text) = record(&out, c);
    assert_eq!(
        (o.export.as_str(), o.record.as_str()),
        ("postman_collection", "")
    );
    assert!(
        text.contains(&format!(
            "variable.adminPassword = {}\n",
            p.variable_password
        )),
        "{text}"
    );
    assert!(text.contains("auth.bearer.token = {{token}}\n"), "{text}");
    let (o, text) = record(&out, &format!("{c}#/item/0/item/0/item/0"));
    assert_eq!(o.item.as_deref(), Some("Admin/Users/Create user"));
    assert_eq!(o.container.as_deref(), Some("Shop API"));
    assert!(
        text.contains(&format!("request.auth.bearer.token = {}\n", p.bearer)),
        "{text}"
    );
    let (o, text) = record(&out, &format!("{c}#/item/1/item/0"));
    assert_eq!(o.item.as_deref(), Some("Orders/List orders"));
    assert!(
        text.contains(&format!("request.header.X-Api-Key = {}\n", p.header_key)),
        "{text}"
    );
    assert!(text.contains(&p.stripe), "{text}");
    // Folders are records too (their own auth, scripts), without their children's fields.
    let (o, text) = record(&out, &format!("{c}#/item/0"));
    assert_eq!(o.item.as_deref(), Some("Admin"));
    assert!(!text.contains(&p.bearer), "{text}");
    let (o, text) = record(&out, "api/prod-env.json#/values");
    assert_eq!(o.export, "postman_environment");
    assert_eq!(o.container.as_deref(), Some("Prod"));
    assert!(
        text.contains(&format!("values.api_token = {}\n", p.env_token)),
        "{text}"
    );
}

#[test]
fn jira_issues_and_comments() {
    let dir = tempfile::tempdir().unwrap();
    let j = exports::jira(&mut fakes());
    write(dir.path(), "jira/search.json", &j.json);
    let out = scan_dir(dir.path(), &FsOptions::default());
    assert!(out.diags.is_empty(), "{:?}", out.diags);
    let (o, text) = record(&out, "jira/search.json#/issues/0");
    assert_eq!(o.export, "jira");
    assert_eq!(o.item.as_deref(), Some("OPS-7"));
    assert_eq!(o.container.as_deref(), Some("OPS"));
    assert_eq!(o.author.as_deref(), Some("Ada Lovelace <ada@example.com>"));
    assert_eq!(o.time.as_deref(), Some("2024-03-04T10:00:00.000+01:00"));
    assert!(text.contains(&j.description_token), "{text}");
    let (o, text) = record(&out, "jira/search.json#/issues/1/fields/comment/comments/1");
    assert_eq!(o.item.as_deref(), Some("OPS-8 comment"));
    assert_eq!(o.author.as_deref(), Some("Bob Builder <bob@example.com>"));
    assert!(
        text.contains(&format!(
            "aws_secret_access_key = {}",
            j.comment_key.secret_access_key
        )),
        "{text}"
    );
    let (_, issue) = record(&out, "jira/search.json#/issues/1");
    assert!(
        !issue.contains(&j.comment_key.access_key_id),
        "comments are their own records"
    );
}

#[test]
fn confluence_page_keeps_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (html, token) = exports::confluence_page(&mut fakes());
    write(dir.path(), "Ops/Deploy-runbook_98765.html", &html);
    write(
        dir.path(),
        "Ops/plain.html",
        "<html><title>x</title><body>hi</body></html>",
    );
    let out = scan_dir(dir.path(), &FsOptions::default());
    let (o, text) = record(&out, "Ops/Deploy-runbook_98765.html");
    assert_eq!(o.export, "confluence");
    assert_eq!(o.container.as_deref(), Some("Ops"));
    assert_eq!(o.item.as_deref(), Some("Deploy runbook (id 98765)"));
    assert_eq!(o.author.as_deref(), Some("Ada Lovelace"));
    assert_eq!(text, html);
    assert!(text.contains(&token));
    assert!(matches!(out.blobs["Ops/plain.html"].origin, Origin::File));
}

/// A truncated export is an error naming the file and the position, and
/// its text is still scanned; the other files of the run are split as usual.
#[test]
fn truncated_exports_are_errors_and_scanned_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = exports::postman(&mut fakes());
    let s = exports::slack_export(&mut fakes());
    let cut = &p.collection[..p.collection.find(&p.bearer).unwrap() + 10];
    write(dir.path(), "cut.postman_collection.json", cut);
    let day = &s.files[2].1;
    write(
        dir.path(),
        "slack/general/2024-03-04.json",
        &day[..day.len() / 2],
    );
    write(dir.path(), "ok.postman_environment.json", &p.environment);
    let out = scan_dir(dir.path(), &FsOptions::default());
    let errs = out.diags_of("export_corrupt");
    assert_eq!(
        errs,
        vec![
            ("cut.postman_collection.json".to_string(), true),
            ("slack/general/2024-03-04.json".to_string(), true)
        ]
    );
    let msg = &out
        .diags
        .iter()
        .find(|d| d.kind == "export_corrupt")
        .unwrap()
        .message;
    assert!(msg.contains("truncated JSON at line"), "{msg}");
    assert!(matches!(
        out.blobs["cut.postman_collection.json"].origin,
        Origin::File
    ));
    assert!(
        out.text("cut.postman_collection.json")
            .contains(&p.bearer[..10])
    );
    assert!(
        out.text("slack/general/2024-03-04.json")
            .contains("morning")
    );
    record(&out, "ok.postman_environment.json#/values");
}

/// An export larger than the in-memory limit is not parsed: a skip says
/// so and the file is streamed as plain text like any large file.
#[test]
fn huge_export_is_scanned_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = exports::postman(&mut fakes());
    let padding = format!("\"description\": \"{}\",", "x".repeat(64 << 10));
    let big = p.environment.replacen('{', &format!("{{{padding}"), 1);
    write(dir.path(), "big.postman_environment.json", &big);
    let opts = FsOptions {
        max_in_memory: 32 << 10,
        ..FsOptions::default()
    };
    let out = scan(dir.path(), &[dir.path().to_path_buf()], &opts);
    assert_eq!(
        out.diags_of("export_limit"),
        vec![("big.postman_environment.json".to_string(), false)]
    );
    let got = &out.blobs["big.postman_environment.json"];
    assert!(matches!(got.origin, Origin::File));
    assert!(got.file.is_some(), "streamed from disk");
    assert!(String::from_utf8_lossy(&got.bytes).contains(&p.env_token));
}

/// Export recognition only applies to files: JSON that is not an export is
/// delivered as it is.
#[test]
fn ordinary_json_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "package.json",
        "{\"name\": \"x\", \"version\": \"1.0.0\"}",
    );
    write(
        dir.path(),
        "notes/2024-03-04.json",
        "{\"not\": \"a day file\"}",
    );
    write(
        dir.path(),
        "odd.postman_collection.json",
        "{\"name\": \"neither\"}",
    );
    let out = scan_dir(dir.path(), &FsOptions::default());
    assert!(out.diags.is_empty(), "{:?}", out.diags);
    assert_eq!(
        out.paths(),
        vec![
            "notes/2024-03-04.json",
            "odd.postman_collection.json",
            "package.json"
        ]
    );
    assert!(out.blobs.values().all(|g| matches!(g.origin, Origin::File)));
}

/// `entities.xml` of Jira and Confluence backups (zipped, as the products
/// write them): one record per entity or object, with the issue key or
/// page title; a truncated one is an error and is scanned as text.
#[test]
fn jira_and_confluence_backup_xml() {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = fakes();
    let (jira, in_description, in_comment) = exports::jira_backup(&mut fs);
    let (conf, in_body) = exports::confluence_backup(&mut fs);
    write(
        dir.path(),
        "jira-backup.zip",
        zip(&[("entities.xml", jira.as_bytes())]),
    );
    write(dir.path(), "confluence/entities.xml", &conf);
    write(dir.path(), "cut/entities.xml", &jira[..jira.len() / 2]);
    let out = scan_dir(dir.path(), &FsOptions::default());
    let (o, text) = record(
        &out,
        "jira-backup.zip!entities.xml#/entity-engine-xml/Issue[@id=10007]",
    );
    assert_eq!(o.export, "jira");
    assert_eq!(o.item.as_deref(), Some("OPS-7"));
    assert_eq!(o.author.as_deref(), Some("ada"));
    assert_eq!(o.time.as_deref(), Some("2024-03-04 10:00:00.0"));
    assert!(
        text.contains(&format!(
            "description = The pipeline uses my token {in_description}"
        )),
        "{text}"
    );
    assert!(
        text.contains("summary = CI cannot push & deploy\n"),
        "{text}"
    );
    let (o, text) = record(
        &out,
        "jira-backup.zip!entities.xml#/entity-engine-xml/Action[@id=20002]",
    );
    assert_eq!(o.item.as_deref(), Some("comment on issue 10007"));
    assert_eq!(o.author.as_deref(), Some("bob"));
    assert!(
        text.contains(&format!("body = use the bot instead:\n{in_comment}\n")),
        "{text}"
    );
    let (o, text) = record(
        &out,
        "confluence/entities.xml#/hibernate-generic/object[@class=BodyContent][@id=555]",
    );
    assert_eq!(o.export, "confluence");
    assert_eq!(
        o.item.as_deref(),
        Some("BodyContent 555 of Deploy runbook (id 98765)")
    );
    assert!(text.contains(&in_body), "{text}");
    let (o, _) = record(
        &out,
        "confluence/entities.xml#/hibernate-generic/object[@class=Page][@id=98765]",
    );
    assert_eq!(o.container.as_deref(), Some("space 4242"));
    assert_eq!(
        out.diags_of("export_corrupt"),
        vec![("cut/entities.xml".to_string(), true)]
    );
    assert!(matches!(out.blobs["cut/entities.xml"].origin, Origin::File));
}
