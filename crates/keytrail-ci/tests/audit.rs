//! `ci-audit` over fixtures written at test time: one positive and one
//! negative case per check, invalid YAML, GitLab includes, and SARIF
//! output validated against the official 2.1.0 schema.

use keytrail_ci::audit::{self, AuditOutput, CiFinding, encode};
use keytrail_scan::Scanner;
use keytrail_testkit::secrets::FakeSecrets;
use std::path::Path;

const SHA: &str = "8e5e7e5ab8b370d6c329ec480221332ada57f0ab";

fn scanner() -> Scanner {
    let (rules, _) = keytrail_rules::builtin();
    Scanner::new(rules).0
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Audit one workflow (written to `.github/workflows/ci.yml`).
fn workflow(text: &str) -> AuditOutput {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".github/workflows/ci.yml", text);
    audit::audit_path(dir.path(), Some(&scanner()))
}

fn gitlab(files: &[(&str, &str)]) -> AuditOutput {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    audit::audit_path(dir.path(), Some(&scanner()))
}

fn of<'a>(out: &'a AuditOutput, check: &str) -> Vec<&'a CiFinding> {
    out.findings.iter().filter(|f| f.check == check).collect()
}

/// A safe workflow prefix: read-only token, pinned checkout.
fn safe_head() -> String {
    format!(
        "on: push\npermissions:\n  contents: read\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@{SHA}\n"
    )
}

#[test]
fn clean_workflow_has_no_findings() {
    let out = workflow(&format!("{}      - run: make test\n", safe_head()));
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert_eq!(out.files, vec![".github/workflows/ci.yml".to_string()]);
}

#[test]
fn plaintext_credential() {
    let token = FakeSecrets::new(1).github_classic();
    let out = workflow(&format!(
        "{}      - run: git push https://x:{token}@github.com/o/r\n",
        safe_head()
    ));
    let f = of(&out, audit::PLAINTEXT_CREDENTIAL);
    // The token (and the URL credential around it) on line 9.
    assert!(!f.is_empty(), "{:#?}", out.findings);
    assert!(f.iter().all(|f| f.line == 9));
    assert!(
        f.iter()
            .any(|f| f.rule_id.as_deref() == Some("github.pat.classic"))
    );
    let json = serde_json::to_string(&out.findings).unwrap();
    assert!(!json.contains(&token), "the secret leaked into output");
    let neg = workflow(&format!(
        "{}      - run: git push https://x:${{{{ secrets.GH_TOKEN }}}}@github.com/o/r\n",
        safe_head()
    ));
    assert!(of(&neg, audit::PLAINTEXT_CREDENTIAL).is_empty());
}

#[test]
fn long_lived_cloud_keys() {
    let out = workflow(&format!(
        "{}      - uses: aws-actions/configure-aws-credentials@{SHA}\n        with:\n          aws-access-key-id: ${{{{ secrets.AWS_ACCESS_KEY_ID }}}}\n          aws-secret-access-key: ${{{{ secrets.AWS_SECRET_ACCESS_KEY }}}}\n      - uses: google-github-actions/auth@{SHA}\n        with:\n          credentials_json: ${{{{ secrets.GCP_SA }}}}\n      - uses: azure/login@{SHA}\n        with:\n          creds: ${{{{ secrets.AZURE_CREDENTIALS }}}}\n      - run: gcloud auth activate-service-account --key-file=key.json\n",
        safe_head()
    ));
    let f = of(&out, audit::LONG_LIVED_CLOUD_KEY);
    let lines: Vec<u64> = f.iter().map(|f| f.line).collect();
    assert_eq!(lines, vec![12, 15, 18, 19], "{:#?}", out.findings);
    let neg = workflow(&format!(
        "{}      - uses: aws-actions/configure-aws-credentials@{SHA}\n        with:\n          role-to-assume: arn:aws:iam::123456789012:role/deploy\n      - uses: google-github-actions/auth@{SHA}\n        with:\n          workload_identity_provider: projects/1/locations/global/workloadIdentityPools/p/providers/gh\n      - uses: azure/login@{SHA}\n        with:\n          client-id: ${{{{ vars.AZURE_CLIENT_ID }}}}\n          tenant-id: ${{{{ vars.AZURE_TENANT_ID }}}}\n",
        safe_head()
    ));
    assert!(
        of(&neg, audit::LONG_LIVED_CLOUD_KEY).is_empty(),
        "{:#?}",
        neg.findings
    );
}

#[test]
fn secrets_echoed_written_and_uploaded() {
    let out = workflow(&format!(
        "{}      - env:\n          NPM_TOKEN: ${{{{ secrets.NPM_TOKEN }}}}\n        run: |\n          echo \"token: $NPM_TOKEN\"\n          echo \"//registry.npmjs.org/:_authToken=$NPM_TOKEN\" > dist/.npmrc\n          echo \"$NPM_TOKEN\" | docker login -u me --password-stdin\n          echo \"NPM=${{{{ secrets.NPM_TOKEN }}}}\" >> \"$GITHUB_ENV\"\n      - uses: actions/upload-artifact@{SHA}\n        with:\n          name: dist\n          path: dist/\n",
        safe_head()
    ));
    let echoed = of(&out, audit::SECRET_ECHOED);
    assert_eq!(echoed.len(), 1, "{:#?}", out.findings);
    assert_eq!(echoed[0].line, 12);
    let written = of(&out, audit::SECRET_WRITTEN);
    assert_eq!(written.len(), 1, "{:#?}", out.findings);
    assert_eq!(written[0].line, 13);
    assert!(written[0].message.contains("dist/.npmrc"));
    let uploaded = of(&out, audit::SECRET_IN_ARTIFACT);
    assert_eq!(uploaded.len(), 1, "{:#?}", out.findings);
    assert_eq!(uploaded[0].line, 19);
    // The same job uploading another directory: no artifact finding.
    let neg = workflow(&format!(
        "{}      - run: echo \"${{{{ secrets.NPM_TOKEN }}}}\" > ~/.npmrc\n      - uses: actions/upload-artifact@{SHA}\n        with:\n          path: dist/\n",
        safe_head()
    ));
    assert!(of(&neg, audit::SECRET_IN_ARTIFACT).is_empty());
    assert!(of(&neg, audit::SECRET_ECHOED).is_empty());
    assert_eq!(of(&neg, audit::SECRET_WRITTEN).len(), 1);
}

#[test]
fn untrusted_checkout_in_pull_request_target() {
    let text = format!(
        "on: pull_request_target\npermissions:\n  contents: read\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@{SHA}\n        with:\n          ref: ${{{{ github.event.pull_request.head.sha }}}}\n      - run: make test\n        env:\n          API_KEY: ${{{{ secrets.API_KEY }}}}\n"
    );
    let out = workflow(&text);
    let f = of(&out, audit::UNTRUSTED_CHECKOUT);
    assert_eq!(f.len(), 1, "{:#?}", out.findings);
    assert_eq!(f[0].line, 10);
    assert_eq!(f[0].severity, keytrail_types::Severity::Critical);
    assert!(f[0].message.contains("API_KEY"));
    // Same checkout under `pull_request`: no secrets, not flagged.
    let neg = workflow(&text.replace("pull_request_target", "pull_request"));
    assert!(of(&neg, audit::UNTRUSTED_CHECKOUT).is_empty());
    // pull_request_target checking out the base (default): fine.
    let neg2 = workflow(&text.replace(
        "        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n",
        "",
    ));
    assert!(
        of(&neg2, audit::UNTRUSTED_CHECKOUT).is_empty(),
        "{:#?}",
        neg2.findings
    );
}

#[test]
fn permissions_missing_and_write_all() {
    let out = workflow(&format!(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n  b:\n    permissions: write-all\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@{SHA}\n"
    ));
    let missing = of(&out, audit::PERMISSIONS_MISSING);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].line, 3);
    let wa = of(&out, audit::PERMISSIONS_WRITE_ALL);
    assert_eq!(wa.len(), 1);
    assert_eq!(wa[0].line, 8);
    let neg = workflow(&safe_head());
    assert!(of(&neg, audit::PERMISSIONS_MISSING).is_empty());
    assert!(of(&neg, audit::PERMISSIONS_WRITE_ALL).is_empty());
}

#[test]
fn production_deploy_needs_an_environment() {
    let job = "  deploy-production:\n    runs-on: ubuntu-latest\n    steps:\n      - run: kubectl apply -f k8s/\n";
    let out = workflow(&format!("{}{job}", safe_head()));
    let f = of(&out, audit::DEPLOY_WITHOUT_ENVIRONMENT);
    assert_eq!(f.len(), 1, "{:#?}", out.findings);
    assert_eq!(f[0].line, 9);
    let gated = job.replace(
        "    runs-on: ubuntu-latest\n",
        "    runs-on: ubuntu-latest\n    environment: production\n",
    );
    let neg = workflow(&format!("{}{gated}", safe_head()));
    assert!(of(&neg, audit::DEPLOY_WITHOUT_ENVIRONMENT).is_empty());
    // A staging deploy is not a production deploy.
    let staging = job.replace("deploy-production", "deploy-staging");
    let neg2 = workflow(&format!("{}{staging}", safe_head()));
    assert!(of(&neg2, audit::DEPLOY_WITHOUT_ENVIRONMENT).is_empty());
}

#[test]
fn one_secret_for_several_environments() {
    let jobs = |b: &str| {
        format!(
            "{}  staging:\n    environment: staging\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./deploy.sh\n        env:\n          TOKEN: ${{{{ secrets.DEPLOY_TOKEN }}}}\n  prod:\n    environment: production\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./deploy.sh\n        env:\n          TOKEN: ${{{{ secrets.{b} }}}}\n",
            safe_head()
        )
    };
    let out = workflow(&jobs("DEPLOY_TOKEN"));
    let f = of(&out, audit::SECRET_SHARED_ACROSS_ENVIRONMENTS);
    assert_eq!(f.len(), 1, "{:#?}", out.findings);
    assert!(f[0].message.contains("`production`") && f[0].message.contains("`staging`"));
    let neg = workflow(&jobs("PROD_DEPLOY_TOKEN"));
    assert!(of(&neg, audit::SECRET_SHARED_ACROSS_ENVIRONMENTS).is_empty());
}

#[test]
fn action_pinning() {
    let out = workflow(&format!(
        "{}      - uses: actions/setup-node@v4\n      - uses: someone/tool-action@main\n      - uses: docker://alpine:3.20\n      - uses: ./local-action\n      - uses: someone/tool-action@{SHA}\n      - uses: docker://alpine@sha256:{}\n",
        safe_head(),
        "a".repeat(64)
    ));
    let third = of(&out, audit::UNPINNED_ACTION);
    assert_eq!(
        third.iter().map(|f| f.line).collect::<Vec<_>>(),
        vec![10, 11]
    );
    let first = of(&out, audit::UNPINNED_FIRST_PARTY_ACTION);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].line, 9);
    assert_eq!(first[0].severity, keytrail_types::Severity::Low);
}

#[test]
fn composite_action_echo_and_pin() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tools/publish/action.yml",
        "name: publish\ninputs:\n  api-token:\n    required: true\nruns:\n  using: composite\n  steps:\n    - uses: someone/setup@v1\n    - shell: bash\n      run: echo \"using ${{ inputs.api-token }}\"\n",
    );
    let out = audit::audit_path(dir.path(), Some(&scanner()));
    assert_eq!(out.files, vec!["tools/publish/action.yml".to_string()]);
    assert_eq!(of(&out, audit::UNPINNED_ACTION).len(), 1);
    let e = of(&out, audit::SECRET_ECHOED);
    assert_eq!(e.len(), 1, "{:#?}", out.findings);
    assert_eq!(e[0].line, 10);
}

#[test]
fn invalid_yaml_is_a_diagnostic_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".github/workflows/broken.yml",
        "on: push\njobs:\n  a: [unclosed\n",
    );
    write(
        dir.path(),
        ".github/workflows/ok.yml",
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: someone/x@v1\n",
    );
    let out = audit::audit_path(dir.path(), Some(&scanner()));
    let d = out
        .diagnostics
        .iter()
        .find(|d| d.kind == "invalid_yaml")
        .expect("diagnostic");
    assert_eq!(d.subject, ".github/workflows/broken.yml");
    assert!(d.line.is_some_and(|l| l >= 3), "{d:?}");
    assert!(d.is_error);
    assert_eq!(of(&out, audit::UNPINNED_ACTION).len(), 1);
}

#[test]
fn gitlab_checks_across_includes() {
    let out = gitlab(&[
        (
            ".gitlab-ci.yml",
            "include:\n  - local: ci/deploy.yml\n  - project: group/templates\n    ref: main\n    file: /t.yml\n  - remote: https://example.com/ci.yml\nstages: [build, deploy]\nbuild:\n  stage: build\n  script:\n    - echo \"token is $DEPLOY_TOKEN\"\n    - echo \"$REGISTRY_PASSWORD\" | docker login -u u --password-stdin registry\n",
        ),
        (
            "ci/deploy.yml",
            ".deploy:\n  stage: deploy\n  script:\n    - ./deploy.sh $DEPLOY_TOKEN\nproduction:\n  extends: .deploy\n  variables:\n    AWS_SECRET_ACCESS_KEY: $PROD_AWS_SECRET\n  script:\n    - aws configure set aws_secret_access_key $PROD_AWS_SECRET\n    - helm upgrade app chart/\nstaging:\n  extends: .deploy\n  environment: staging\n  script:\n    - ./deploy.sh $DEPLOY_TOKEN\nreview:\n  extends: .deploy\n  environment: review-main\n  id_tokens:\n    AWS_TOKEN:\n      aud: https://gitlab.example.com\n  script:\n    - ./deploy.sh $DEPLOY_TOKEN\n",
        ),
    ]);
    assert!(
        out.files.contains(&"ci/deploy.yml".to_string()),
        "{:?}",
        out.files
    );
    let echoed = of(&out, audit::SECRET_ECHOED);
    assert_eq!(echoed.len(), 1, "{:#?}", out.findings);
    assert_eq!(
        (echoed[0].path.as_str(), echoed[0].line),
        (".gitlab-ci.yml", 11)
    );
    let keys = of(&out, audit::LONG_LIVED_CLOUD_KEY);
    assert_eq!(
        keys.iter()
            .map(|f| (f.path.as_str(), f.line))
            .collect::<Vec<_>>(),
        vec![("ci/deploy.yml", 8), ("ci/deploy.yml", 10)],
        "{:#?}",
        out.findings
    );
    let deploy = of(&out, audit::DEPLOY_WITHOUT_ENVIRONMENT);
    assert_eq!(deploy.len(), 1, "{:#?}", out.findings);
    assert_eq!(deploy[0].line, 5);
    let shared = of(&out, audit::SECRET_SHARED_ACROSS_ENVIRONMENTS);
    assert_eq!(shared.len(), 1, "{:#?}", out.findings);
    assert!(shared[0].message.contains("DEPLOY_TOKEN"));
    let inc = of(&out, audit::UNPINNED_INCLUDE);
    assert_eq!(inc.iter().map(|f| f.line).collect::<Vec<_>>(), vec![4, 6]);
}

#[test]
fn gitlab_missing_include_and_invalid_yaml() {
    let out = gitlab(&[
        (
            ".gitlab-ci.yml",
            "include: ci/missing.yml\njob:\n  script: [make]\n",
        ),
        ("sub/.gitlab-ci.yml", "job: {script: [make\n"),
    ]);
    assert!(out.diagnostics.iter().any(|d| d.kind == "include_missing"));
    assert!(
        out.diagnostics
            .iter()
            .any(|d| d.kind == "invalid_yaml" && d.subject == "sub/.gitlab-ci.yml")
    );
}

/// `include: local:` cannot leave the repository (`..`, a leading `/..`,
/// a symlink out); wildcards (`*`, `**`) resolve inside it; the good
/// includes next to the refused ones are still read.
#[test]
fn gitlab_local_includes_stay_inside_the_repository_and_wildcards_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    write(
        tmp.path(),
        "outside.yml",
        "leak:\n  script:\n    - echo \"$OUTSIDE_TOKEN\"\n",
    );
    write(
        &repo,
        ".gitlab-ci.yml",
        "include:\n  - local: ../outside.yml\n  - local: /../outside.yml\n  - local: ci/link.yml\n  - local: 'ci/**/*.yml'\n  - 'top/*.yml'\njob:\n  script: [make]\n",
    );
    write(&repo, "ci/a.yml", "a:\n  script: [make]\n");
    write(&repo, "ci/nested/b.yml", "b:\n  script: [make]\n");
    write(&repo, "top/c.yml", "c:\n  script: [make]\n");
    write(&repo, "top/deeper/d.yml", "d:\n  script: [make]\n");
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path().join("outside.yml"), repo.join("ci/link.yml")).unwrap();
    let out = audit::audit_path(&repo, Some(&scanner()));
    let mut files = out.files.clone();
    files.sort();
    files.dedup();
    assert_eq!(
        files,
        vec![".gitlab-ci.yml", "ci/a.yml", "ci/nested/b.yml", "top/c.yml"],
        "{:#?}",
        out.diagnostics
    );
    assert!(
        out.findings
            .iter()
            .all(|f| !f.message.contains("OUTSIDE_TOKEN")),
        "{:#?}",
        out.findings
    );
    let refused: Vec<_> = out
        .diagnostics
        .iter()
        .filter(|d| d.kind == "include_refused")
        .collect();
    assert_eq!(
        refused.len(),
        if cfg!(unix) { 3 } else { 2 },
        "{refused:#?}"
    );
    assert!(
        refused
            .iter()
            .all(|d| d.subject == ".gitlab-ci.yml" && d.line.is_some())
    );
    assert!(
        refused[0].message.contains("leaves the repository"),
        "{}",
        refused[0].message
    );
    #[cfg(unix)]
    assert!(
        refused
            .iter()
            .any(|d| d.message.contains("outside the repository")),
        "{refused:#?}"
    );
}

/// A wildcard include matching more files than GitLab allows is refused
/// with a diagnostic, not read without bound.
#[test]
fn gitlab_wildcard_includes_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        ".gitlab-ci.yml",
        "include: 'many/*.yml'\njob:\n  script: [make]\n",
    );
    for i in 0..200 {
        write(
            tmp.path(),
            &format!("many/f{i}.yml"),
            "x:\n  script: [make]\n",
        );
    }
    let out = audit::audit_path(tmp.path(), Some(&scanner()));
    let d = out
        .diagnostics
        .iter()
        .find(|d| d.kind == "include_refused")
        .unwrap_or_else(|| panic!("{:#?}", out.diagnostics));
    assert!(d.message.contains("matches 200 files"), "{}", d.message);
    assert_eq!(out.files, vec![".gitlab-ci.yml"]);
}

fn sarif_validator() -> jsonschema::Validator {
    jsonschema::draft4::new(&keytrail_testkit::sarif::schema()).expect("schema compiles")
}

#[test]
fn every_format_and_valid_sarif() {
    let token = FakeSecrets::new(3).github_classic();
    let out = workflow(&format!(
        "on: pull_request_target\njobs:\n  a:\n    permissions: write-all\n    runs-on: x\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{{{ github.head_ref }}}}\n      - run: echo ${{{{ secrets.X }}}} && echo {token}\n"
    ));
    assert!(out.findings.len() >= 4, "{:#?}", out.findings);
    let doc = encode::sarif(&out, "0.1.0");
    let errors: Vec<String> = sarif_validator()
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), out.findings.len());
    assert_eq!(
        doc["runs"][0]["automationDetails"]["id"], "keytrail-ci-audit/",
        "a category of its own, apart from `keytrail scan`'s"
    );
    let mut all = Vec::new();
    encode::write_human(&mut all, &out, false).unwrap();
    encode::write_json(&mut all, &out).unwrap();
    encode::write_jsonl(&mut all, &out).unwrap();
    encode::write_sarif(&mut all, &out, "0.1.0").unwrap();
    let all = String::from_utf8(all).unwrap();
    assert!(!all.contains(&token), "a secret reached the output");
    let mut jsonl = Vec::new();
    encode::write_jsonl(&mut jsonl, &out).unwrap();
    for line in String::from_utf8(jsonl).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in [
            "check",
            "severity",
            "path",
            "line",
            "message",
            "remediation",
            "fingerprint",
        ] {
            assert!(v.get(field).is_some(), "{field} missing in {line}");
        }
    }
}
