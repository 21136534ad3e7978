//! `scan --image`: the structured remediation block of image findings in
//! every output format, on images built at test time with `umoci` (an OCI
//! layout with two tags): a secret in a COPY'd file (deleted again in the
//! second tag), one passed as a build argument and recorded in a RUN history
//! line, one set with ENV.
//!
//! Without `umoci`, tests fail naming the packages to install
//! (`scripts/install-test-deps.sh` installs them).

use crate::{CliTest, fake};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Fails the test, naming the Debian packages, when an external tool is missing.
pub(crate) fn tools(names: &[&str]) {
    keytrail_testkit::tools::require(
        names,
        "Debian: apt-get install umoci skopeo docker-registry openssl",
    )
}

pub(crate) use keytrail_testkit::tools::run;

/// An OCI layout image built with umoci, layer by layer.
pub(crate) struct Umoci {
    pub(crate) layout: PathBuf,
    bundle: PathBuf,
    tag: String,
}

impl Umoci {
    /// A new empty image `layout:tag` under `dir`.
    pub(crate) fn new(dir: &Path, tag: &str) -> Umoci {
        let layout = dir.join("layout");
        if !layout.exists() {
            run(Command::new("umoci")
                .args(["init", "--layout"])
                .arg(&layout));
        }
        let u = Umoci {
            bundle: dir.join(format!("bundle-{tag}")),
            layout,
            tag: tag.to_string(),
        };
        run(Command::new("umoci").args(["new", "--image", &u.image()]));
        u.unpack();
        u
    }

    fn unpack(&self) {
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &self.image()])
            .arg(&self.bundle));
    }

    pub(crate) fn image(&self) -> String {
        format!("{}:{}", self.layout.display(), self.tag)
    }

    /// The `oci:` reference of this image for `--image`.
    pub(crate) fn reference(&self) -> String {
        format!("oci:{}", self.image())
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        let p = self.bundle.join("rootfs").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn remove(&self, rel: &str) {
        std::fs::remove_file(self.bundle.join("rootfs").join(rel)).unwrap();
    }

    /// Commit the bundle as a new layer made by `created_by`.
    pub(crate) fn layer(&self, created_by: &str) {
        run(Command::new("umoci")
            .args([
                "repack",
                "--refresh-bundle",
                "--history.created_by",
                created_by,
                "--image",
                &self.image(),
            ])
            .arg(&self.bundle));
    }

    /// Commit the bundle as a new layer made by `created_by` at `created` (RFC 3339).
    pub(crate) fn layer_at(&self, created_by: &str, created: &str) {
        run(Command::new("umoci")
            .args([
                "repack",
                "--refresh-bundle",
                "--history.created_by",
                created_by,
                "--history.created",
                created,
                "--image",
                &self.image(),
            ])
            .arg(&self.bundle));
    }

    /// Change the config, recording `created_by` as an empty-layer history entry.
    fn config(&self, created_by: &str, args: &[&str]) {
        run(Command::new("umoci")
            .args(["config", "--image", &self.image()])
            .args(["--history.created_by", created_by])
            .args(args));
    }

    /// Tag the current image as `tag` too, and continue building `tag`.
    fn fork(&self, tag: &str) -> Umoci {
        run(Command::new("umoci").args(["tag", "--image", &self.image(), tag]));
        let u = Umoci {
            layout: self.layout.clone(),
            bundle: self.bundle.with_file_name(format!("bundle-{tag}")),
            tag: tag.to_string(),
        };
        u.unpack();
        u
    }
}

/// The three fake secrets of [`build`].
struct Secrets {
    /// In `/app/.env`, put there by `COPY` (deleted again in `v2`).
    copied: String,
    /// A build argument recorded in a RUN history line.
    build_arg: String,
    /// Set with ENV.
    env: String,
}

/// `v1`: COPY of an app with `.env`, a RUN with a build argument, an ENV.
/// `v2`: `v1` plus a layer deleting `.env`.
fn build(t: &CliTest) -> (Umoci, Umoci, Secrets) {
    tools(&["umoci"]);
    // Three tokens whose masked forms (`ghp_…XY`) differ, so outputs can be told apart.
    let mut masked = std::collections::HashSet::new();
    let mut distinct = || loop {
        let t = fake::github_pat();
        if masked.insert(keytrail_types::redact(t.as_bytes())) {
            return t;
        }
    };
    let s = Secrets {
        copied: distinct(),
        build_arg: distinct(),
        env: distinct(),
    };
    let v1 = Umoci::new(t.root(), "v1");
    v1.write("app/main.py", "print('hello')\n");
    v1.write("app/.env", &format!("GITHUB_TOKEN={}\n", s.copied));
    v1.layer("COPY . /app # buildkit");
    v1.write("app/vendor/lock.txt", "deps fetched\n");
    v1.layer(&format!(
        "RUN |1 GH_TOKEN={} /bin/sh -c ./fetch-deps # buildkit",
        s.build_arg
    ));
    v1.config(
        &format!("ENV DEPLOY_TOKEN={}", s.env),
        &["--config.env", &format!("DEPLOY_TOKEN={}", s.env)],
    );
    let v2 = v1.fork("v2");
    v2.remove("app/.env");
    v2.layer("RUN /bin/sh -c rm /app/.env # buildkit");
    (v1, v2, s)
}

fn scan(t: &CliTest, v1: &Umoci, v2: &Umoci, format: &str) -> crate::Run {
    let r = t.run(&[
        "scan",
        "--format",
        format,
        "--image",
        &v1.reference(),
        "--image",
        &v2.reference(),
    ]);
    assert_eq!(r.code, 1, "{format}: {r:?}");
    r
}

fn by_secret<'a>(findings: &'a [Value], secret: &str) -> &'a Value {
    let redacted = keytrail_types::redact(secret.as_bytes());
    findings
        .iter()
        .find(|f| f["secret_redacted"] == redacted.as_str())
        .unwrap_or_else(|| panic!("no finding for {redacted}"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

#[test]
fn json_remediation_names_instruction_tags_and_digests() {
    let t = CliTest::new();
    let (v1, v2, s) = build(&t);
    let r = scan(&t, &v1, &v2, "json");
    for secret in [&s.copied, &s.build_arg, &s.env] {
        assert!(!r.all().contains(secret.as_str()), "secret leaked");
    }
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    let (ref1, ref2) = (v1.reference(), v2.reference());

    // COPY: both tags ship the layer; v2 deleted the file later.
    let copied = &by_secret(findings, &s.copied)["remediation"];
    assert_eq!(strs(&copied["instructions"]), vec!["COPY"]);
    assert_eq!(
        strs(&copied["references"]),
        vec![ref1.as_str(), ref2.as_str()]
    );
    let digests = strs(&copied["digests"]);
    assert_eq!(digests.len(), 2);
    assert!(digests.iter().all(|d| d.starts_with("sha256:")));
    let actions: Vec<&str> = copied["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "rotate_credential",
            "rebuild_without_secret",
            "delete_images",
            "invalidate_build_cache"
        ]
    );
    let rebuild = copied["steps"][1]["detail"].as_str().unwrap();
    assert!(
        rebuild.contains("COPY/ADD") && rebuild.contains("RUN rm"),
        "{rebuild}"
    );
    let delete = copied["steps"][2]["detail"].as_str().unwrap();
    for d in &digests {
        assert!(delete.contains(d), "{delete}");
    }
    let affected = copied["affected"].as_array().unwrap();
    assert_eq!(affected.len(), 2);
    for (a, visible) in affected.iter().zip([true, false]) {
        assert_eq!(a["layers"][0]["index"], 0);
        assert_eq!(a["layers"][0]["instruction"], "COPY");
        assert_eq!(strs(&a["layers"][0]["paths"]), vec!["/app/.env"]);
        assert_eq!(a["visible_in_final"], visible, "{a}");
    }

    // ARG: recorded in the RUN history line; the line is masked.
    let arg = by_secret(findings, &s.build_arg);
    let rem = &arg["remediation"];
    assert_eq!(strs(&rem["instructions"]), vec!["ARG"]);
    assert_eq!(rem["affected"][0]["config"][0]["key"], "history[1]");
    assert_eq!(rem["affected"][0]["config"][0]["instruction"], "ARG");
    let rebuild = rem["steps"][1]["detail"].as_str().unwrap();
    assert!(rebuild.contains("build argument"), "{rebuild}");
    let created_by = arg["locations"][0]["created_by"].as_str().unwrap();
    let masked = keytrail_types::redact(s.build_arg.as_bytes());
    assert!(
        created_by.starts_with(&format!("RUN |1 GH_TOKEN={masked} /bin/sh")),
        "{created_by}"
    );

    // ENV: in the config Env and in the history entry that set it.
    let env = &by_secret(findings, &s.env)["remediation"];
    assert_eq!(strs(&env["instructions"]), vec!["ENV"]);
    let keys: Vec<&str> = env["affected"][0]["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["Env[0]", "history[2]"]);
    assert!(
        env["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("ENV stores the value")
    );
}

#[test]
fn jsonl_and_sarif_carry_the_block() {
    let t = CliTest::new();
    let (v1, v2, s) = build(&t);
    let json: Value = serde_json::from_str(&scan(&t, &v1, &v2, "json").stdout).unwrap();
    let expected = &by_secret(json["findings"].as_array().unwrap(), &s.copied)["remediation"];

    let r = scan(&t, &v1, &v2, "jsonl");
    let redacted = keytrail_types::redact(s.copied.as_bytes());
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["secret_redacted"] == redacted.as_str())
        .collect();
    assert_eq!(lines.len(), 2, "one line per tag");
    // The block is written once, on the finding's first line (it grows
    // with the locations: repeating it made JSONL quadratic).
    assert_eq!(&lines[0]["remediation"], expected);
    assert!(lines[1].get("remediation").is_none(), "{}", lines[1]);

    let r = scan(&t, &v1, &v2, "sarif");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let errors: Vec<String> = crate::formats::sarif_validator()
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    let result = results
        .iter()
        .find(|x| x["properties"]["secret_redacted"] == redacted.as_str())
        .unwrap();
    assert_eq!(&result["properties"]["remediation"], expected);
    let msg = result["message"]["text"].as_str().unwrap();
    assert!(
        msg.contains("Remediation: 1) Revoke and rotate the credential first")
            && msg.contains(&format!(
                "Images containing it: {}, {}.",
                v1.reference(),
                v2.reference()
            )),
        "{msg}"
    );
    for secret in [&s.copied, &s.build_arg, &s.env] {
        assert!(!r.all().contains(secret.as_str()), "SARIF leaked a secret");
    }
}

#[test]
fn human_remediation_block() {
    let t = CliTest::new();
    let (v1, v2, s) = build(&t);
    let r = scan(&t, &v1, &v2, "human");
    for secret in [&s.copied, &s.build_arg, &s.env] {
        assert!(!r.all().contains(secret.as_str()), "secret leaked");
    }
    let digest = regex::Regex::new(r"sha256:[0-9a-f]{64}").unwrap();
    let fingerprint = regex::Regex::new(r"fingerprint: [0-9a-f]{32}").unwrap();
    let mut out = t.filter(&r.stdout);
    for (secret, name) in [
        (&s.copied, "[COPIED]"),
        (&s.build_arg, "[BUILD_ARG]"),
        (&s.env, "[ENV]"),
    ] {
        out = out.replace(&keytrail_types::redact(secret.as_bytes()), name);
    }
    let out = digest.replace_all(&out, "sha256:[DIGEST]");
    let out = fingerprint.replace_all(&out, "fingerprint: [FP]");
    // umoci records the host's architecture.
    let platform = regex::Regex::new(r"\[linux/[a-z0-9]+\]").unwrap();
    let out = platform.replace_all(&out, "[PLATFORM]");
    insta::assert_snapshot!("image_human_stdout", out);
}

/// An access key id and its secret set by two `ENV` instructions (two `Env`
/// entries of the config) are read together and reported as one pair, at
/// the id's entry, so verify and exposure see the key with its secret.
#[test]
fn env_entries_set_apart_are_paired() {
    tools(&["umoci"]);
    let t = CliTest::new();
    let key = fake::secrets().aws_key_pair();
    let img = Umoci::new(t.root(), "env");
    img.write("app/main.py", "print('hello')\n");
    img.layer("COPY . /app # buildkit");
    img.config(
        &format!("ENV AWS_ACCESS_KEY_ID={}", key.access_key_id),
        &[
            "--config.env",
            &format!("AWS_ACCESS_KEY_ID={}", key.access_key_id),
        ],
    );
    img.config(
        "ENV AWS_REGION=eu-west-1",
        &["--config.env", "AWS_REGION=eu-west-1"],
    );
    img.config(
        &format!("ENV AWS_SECRET_ACCESS_KEY={}", key.secret_access_key),
        &[
            "--config.env",
            &format!("AWS_SECRET_ACCESS_KEY={}", key.secret_access_key),
        ],
    );
    let r = t.run(&["scan", "--format", "json", "--image", &img.reference()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.all().contains(&key.secret_access_key), "secret leaked");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    let pair = findings
        .iter()
        .find(|f| f["rule_id"] == "aws.access_key.pair")
        .unwrap_or_else(|| panic!("no pair finding: {findings:#?}"));
    let context = pair["context"].to_string();
    assert!(context.contains(&key.access_key_id), "{context}");
    let env_path = format!("{}@config:Env", img.reference());
    let locations = pair["locations"].as_array().unwrap();
    let at_env = locations
        .iter()
        .find(|l| l["path"] == env_path.as_str())
        .unwrap_or_else(|| panic!("{locations:#?}"));
    // umoci's config starts with PATH, so the id is the second line.
    let line = at_env["line"].as_u64().unwrap();
    let keys: Vec<&str> = pair["remediation"]["affected"][0]["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&format!("Env[{}]", line - 1).as_str()),
        "{keys:?} at line {line}"
    );
}

/// `--image` given a plain local path, with no `oci:` or `docker-archive:`
/// transport: an OCI layout directory (relative, with and without `./`) and
/// a `docker save` tar are read from disk, never looked up on Docker Hub
/// (the test has no network: a registry lookup would fail the run). A
/// local-looking path that does not exist is an error naming it (exit 2).
#[test]
fn local_paths_without_transport_are_read_from_disk() {
    tools(&["umoci", "skopeo"]);
    let t = CliTest::new();
    let token = fake::github_pat();
    let img = Umoci::new(t.root(), "v1");
    img.write("app/.env", &format!("GITHUB_TOKEN={token}\n"));
    img.layer("COPY . /app # buildkit");
    assert!(t.root().join("layout/oci-layout").is_file());
    run(Command::new("skopeo").current_dir(t.root()).args([
        "copy",
        "oci:layout:v1",
        "docker-archive:app.tar:app:v1",
    ]));
    let redacted = keytrail_types::redact(token.as_bytes());
    for reference in ["layout", "./layout", "app.tar", "./app.tar"] {
        let r = t.run(&["scan", "--format", "json", "--image", reference]);
        assert_eq!(r.code, 1, "{reference}: {r:?}");
        assert!(!r.all().contains(&token), "secret leaked");
        let doc: Value = serde_json::from_str(&r.stdout).unwrap();
        let f = by_secret(doc["findings"].as_array().unwrap(), &token);
        let loc = &f["locations"][0];
        assert_eq!(loc["source"], "image", "{reference}: {loc}");
        assert_eq!(loc["image"], reference, "{reference}: {loc}");
        assert!(
            loc["path"].as_str().unwrap().ends_with("app/.env"),
            "{reference}: {loc}"
        );
        assert_eq!(f["secret_redacted"], redacted.as_str());
    }
    let r = t.run(&["scan", "--image", "./missing-layout"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing-layout"), "{}", r.stderr);
    assert!(!r.all().contains("docker.io"), "{}", r.all());
}
