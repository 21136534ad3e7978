//! Configuration: `keytrail.toml` found upwards, `--config`, `--no-config`,
//! `.keytrailignore`, `--disable-rule`/`--enable-rule`, thresholds, allow
//! comments, errors naming file and line, and the examples in
//! docs/configuration.md.

use crate::{CliTest, fake};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).expect("JSON document")
}

fn rule_ids(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first fenced block of `lang` after `heading` in docs/configuration.md.
fn doc_block(heading: &str, lang: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let doc = std::fs::read_to_string(path).expect("docs/configuration.md");
    let from = doc.find(heading).unwrap_or_else(|| panic!("no {heading}"));
    let fence = format!("```{lang}\n");
    let start = from + doc[from..].find(&fence).expect("block") + fence.len();
    let end = start + doc[start..].find("```").expect("block end");
    doc[start..end].to_string()
}

/// The documented custom rule passes `rules check -W`, and the documented
/// config and ignore file are accepted and applied as documented.
#[test]
fn documented_examples_work() {
    let t = CliTest::new();
    let rule = doc_block("## Custom rules", "yaml");
    t.write("keytrail-rules/acme.yml", &rule);
    let r = t.run(&["rules", "check", "--warnings-as-errors", "keytrail-rules"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("checked 1 rule(s) in 1 file(s): 0 error(s), 0 warning(s)"),
        "{}",
        r.stderr
    );

    t.write("keytrail.toml", &doc_block("## `keytrail.toml`", "toml"));
    t.write(
        ".keytrailignore",
        &doc_block("## `.keytrailignore`", "text"),
    );
    let acme = format!(
        "acme_live_{}",
        fake::random(b"abcdefghijklmnopqrstuvwxyz0123456789", 32)
    );
    let pat = fake::github_pat();
    t.write("src/app.env", &format!("ACME={acme}\nGH={pat}\n"));
    t.write(
        "tests/fixtures/key.env",
        &format!("GH={}\n", fake::github_pat()),
    );
    let r = t.run(&["scan", "--format", "jsonl", "."]);
    assert_eq!(r.code, 1, "{r:?}");
    let recs: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let in_app = |rule: &str| {
        recs.iter()
            .any(|x| x["rule_id"] == rule && x["path"] == "./src/app.env")
    };
    assert!(in_app("acme.api_key"), "rules.dirs: {}", r.stdout);
    assert!(in_app("github.pat.classic"), "{}", r.stdout);
    assert!(
        recs.iter()
            .all(|x| !x["path"].as_str().unwrap().contains("fixtures")),
        "tests/fixtures/** is excluded: {}",
        r.stdout
    );
    assert!(!r.all().contains(&acme) && !r.all().contains(&pat));
}

/// The config is found from the scanned root upwards; `--no-config` and
/// `--config FILE` change which one applies; allow-listed values and
/// fingerprints are counted, never printed.
#[test]
fn config_found_upwards_allows_values_and_fingerprints() {
    let t = CliTest::new();
    let (a, b) = (fake::github_pat(), fake::github_pat());
    t.write("repo/sub/dir/app.env", &format!("A={a}\nB={b}\n"));
    t.write(
        "repo/keytrail.toml",
        &format!("[allow]\nsecrets_sha256 = [\"{}\"]\n", sha256_hex(&a)),
    );
    let r = t.run(&["scan", "--format", "json", "repo/sub/dir"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = json(&r.stdout);
    assert_eq!(v["findings"].as_array().unwrap().len(), 1, "{}", r.stdout);
    assert_eq!(v["summary"]["allowed"], 1);
    assert!(r.stderr.contains("1 allowed by config"), "{}", r.stderr);
    assert!(
        r.stderr.contains("keytrail.toml (1 finding allow-listed)"),
        "the config in use is named: {}",
        r.stderr
    );
    let fp_b = v["findings"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();

    let r = t.run(&["scan", "--format", "json", "--no-config", "repo/sub/dir"]);
    assert_eq!(json(&r.stdout)["findings"].as_array().unwrap().len(), 2);

    // A fingerprint in .keytrailignore next to the scanned files.
    t.write("repo/sub/.keytrailignore", &format!("# reviewed\n{fp_b}\n"));
    let r = t.run(&["scan", "repo/sub/dir"]);
    assert_eq!(r.code, 0, "both allowed: {r:?}");
    assert!(r.stderr.contains("2 allowed by config"), "{}", r.stderr);

    // --config names another file instead of the one found upwards.
    std::fs::remove_file(t.root().join("repo/sub/.keytrailignore")).unwrap();
    t.write("high.toml", "[scan]\nmin_severity = \"high\"\n");
    let r = t.run(&[
        "scan",
        "--config",
        "high.toml",
        "--format",
        "json",
        "repo/sub/dir",
    ]);
    let v = json(&r.stdout);
    assert_eq!(v["findings"].as_array().unwrap().len(), 2, "{r:?}");
    assert_eq!(v["summary"]["allowed"], 0);
    t.write("critical.toml", "[scan]\nmin_severity = \"critical\"\n");
    let r = t.run(&["scan", "--config", "critical.toml", "repo/sub/dir"]);
    assert_eq!(r.code, 0, "high findings below the threshold: {r:?}");
    let r = t.run(&["scan", "--config", "missing.toml", "repo"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("config file `missing.toml` does not exist")
    );
}

/// A bad config or ignore file stops the run (exit 2) naming the file,
/// line and column.
#[test]
fn bad_config_is_an_error_with_its_position() {
    let t = CliTest::new();
    t.write("a.txt", "nothing\n");
    let cases = [
        (
            "keytrail.toml",
            "[rules]\ndisable = [\"no.such.rule\"]\n",
            "keytrail.toml:2:12: no rule matches `no.such.rule`",
        ),
        (
            "keytrail.toml",
            "[scan]\nmin_severity = 5\n",
            "keytrail.toml:2:16: invalid config",
        ),
        (
            "keytrail.toml",
            "[scan]\nexlude = [\"x\"]\n",
            "keytrail.toml:2:1: invalid config: unknown field `exlude`",
        ),
        (
            ".keytrailignore",
            "ok/**\nsha256:123\n",
            ".keytrailignore:2: `sha256:123`",
        ),
    ];
    for (name, text, want) in cases {
        t.write(name, text);
        let r = t.run(&["scan", "a.txt"]);
        assert_eq!(r.code, 2, "{name}: {r:?}");
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with("error: ") && l.contains(want)),
            "{name}: want {want}: {}",
            r.stderr
        );
        std::fs::remove_file(t.root().join(name)).unwrap();
    }
}

/// `--disable-rule`, `--enable-rule`, `--min-severity`.
#[test]
fn rule_flags_and_thresholds() {
    let t = CliTest::new();
    let pat = fake::github_pat();
    let password = format!(
        "{}7{}",
        fake::random(b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ", 8),
        fake::random(
            b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
            8
        )
    );
    t.write(
        "app.env",
        &format!("GH_TOKEN={pat}\nDB_PASSWORD={password}\n"),
    );
    let ids = |args: &[&str]| {
        let mut all = vec!["scan", "--format", "json"];
        all.extend_from_slice(args);
        all.push("app.env");
        let r = t.run(&all);
        assert!(r.code < 2, "{r:?}");
        rule_ids(&json(&r.stdout))
    };
    assert_eq!(ids(&[]), ["github.pat.classic"]);
    assert!(ids(&["--disable-rule", "github.pat.classic"]).is_empty());
    assert!(ids(&["--disable-rule", "github.*"]).is_empty());
    let with_generic = ids(&["--enable-rule", "generic.password.*"]);
    assert!(
        with_generic.contains(&"generic.password.env".to_string()),
        "{with_generic:?}"
    );
    assert!(ids(&["--min-severity", "critical"]).is_empty());
    let r = t.run(&["scan", "--disable-rule", "github.pat.clasic", "app.env"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("--disable-rule github.pat.clasic: no rule matches `github.pat.clasic`"),
        "{}",
        r.stderr
    );
}

/// The three inline allow markers (and the detect-secrets next-line
/// pragma) suppress the secret on their line, and only there.
#[test]
fn inline_allow_comments() {
    let t = CliTest::new();
    let s: Vec<String> = (0..5).map(|_| fake::github_pat()).collect();
    t.write(
        "app.py",
        &format!(
            "A = \"{}\"  # keytrail:allow\nB = \"{}\"  // gitleaks:allow\nC = \"{}\"  # pragma: allowlist secret\n# pragma: allowlist nextline secret\nD = \"{}\"\n# keytrail:allow\nE = \"{}\"\n",
            s[0], s[1], s[2], s[3], s[4]
        ),
    );
    let r = t.run(&["scan", "--format", "jsonl", "app.py"]);
    assert_eq!(r.code, 1, "{r:?}");
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "only E: {}", r.stdout);
    assert_eq!(lines[0]["line"], 7);
}

/// An AWS key id paired with its secret is one finding (the pair), not a
/// second, low-severity key-id finding at the same place.
#[test]
fn aws_pair_reported_once() {
    let t = CliTest::new();
    let k = fake::secrets().aws_key_pair();
    t.write(
        "credentials",
        &format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            k.access_key_id, k.secret_access_key
        ),
    );
    let r = t.run(&["scan", "--format", "json", "credentials"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = json(&r.stdout);
    assert_eq!(rule_ids(&v), ["aws.access_key.pair"], "{}", r.stdout);
    assert_eq!(v["findings"][0]["severity"], "critical");
    assert_eq!(v["findings"][0]["context"]["id"], k.access_key_id.as_str());
}

/// `[limits]` reach the sources: archive nesting and the git blob cap.
#[test]
fn limits_apply_to_archives_and_git_blobs() {
    let t = CliTest::new();
    let pat = fake::github_pat();
    t.write("src/app.env", &format!("GITHUB_TOKEN={pat}\n"));
    let ok = std::process::Command::new("tar")
        .args(["czf", "bundle.tgz", "-C", "src", "app.env"])
        .current_dir(t.root())
        .status()
        .expect("tar runs")
        .success();
    assert!(ok);
    std::fs::remove_dir_all(t.root().join("src")).unwrap();
    let r = t.run(&["scan", "bundle.tgz"]);
    assert_eq!(r.code, 1, "found inside the archive: {r:?}");
    t.write("keytrail.toml", "[limits]\nmax_archive_depth = 0\n");
    let r = t.run(&["scan", "bundle.tgz"]);
    assert_eq!(r.code, 0, "archives not opened: {r:?}");
    // The flag wins over the file.
    let r = t.run(&["scan", "--max-archive-depth", "1", "bundle.tgz"]);
    assert_eq!(r.code, 1, "{r:?}");
    std::fs::remove_file(t.root().join("keytrail.toml")).unwrap();
    std::fs::remove_file(t.root().join("bundle.tgz")).unwrap();

    let repo = t.root().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    t.write("repo/app.env", &format!("GITHUB_TOKEN={pat}\n"));
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "add"]);
    let r = t.run(&["scan", "repo"]);
    assert_eq!(r.code, 1, "{r:?}");
    t.write("repo/keytrail.toml", "[limits]\ngit_max_blob_bytes = 8\n");
    let r = t.run(&["scan", "-v", "repo"]);
    assert_eq!(r.code, 0, "the blob is over the cap: {r:?}");
    assert!(r.stderr.contains("note: "), "{}", r.stderr);
}
