//! A whole session over real files: sources read in one run, the post-scan
//! steps applied in their listed order with their counts, targets that
//! cannot be read, the observer, and the plan's refusals.

use keytrail_session::baseline::Baseline;
use keytrail_session::source::GitSelection;
use keytrail_session::{Observer, Options, Progress, Session, Step, Targets, plan};
use keytrail_testkit::secrets::FakeSecrets;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn session() -> Session {
    let (rules, _) = keytrail_rules::builtin();
    Session::new(rules).unwrap_or_else(|d| panic!("builtin rules compile: {d:?}"))
}

/// A tree with a GitHub token in a source file, a Stripe key shared by the
/// dev and prod configuration, and a CI log holding another token.
struct Tree {
    dir: tempfile::TempDir,
    github: String,
    stripe: String,
    log_token: String,
}

fn tree() -> Tree {
    let mut g = FakeSecrets::new(71);
    let (github, stripe, log_token) = (
        g.github_classic(),
        g.stripe_live_secret(),
        g.github_classic(),
    );
    let dir = tempfile::tempdir().unwrap();
    let w = |p: &str, s: String| {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, s).unwrap();
    };
    w("src/app.py", format!("TOKEN = '{github}'\n"));
    w(".env.dev", format!("STRIPE_KEY={stripe}\n"));
    w(".env.prod", format!("STRIPE_KEY={stripe}\n"));
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    Tree {
        github,
        stripe,
        log_token,
        dir,
    }
}

fn targets(t: &Tree, log: PathBuf) -> Targets {
    Targets {
        paths: vec![
            t.dir.path().join("src"),
            t.dir.path().join(".env.dev"),
            t.dir.path().join(".env.prod"),
        ],
        logs: vec![log],
        ..Targets::default()
    }
}

fn write_log(t: &Tree) -> PathBuf {
    let log = t.dir.path().join("logs/job.log");
    std::fs::write(
        &log,
        format!(
            "2024-05-01T12:34:56.1234567Z start\n2024-05-01T12:34:56.2234567Z \x1b[32mGH={}\x1b[0m\n",
            t.log_token
        ),
    )
    .unwrap();
    log
}

#[derive(Default)]
struct Seen {
    started: u32,
    finished: u32,
    progress: Option<Arc<Progress>>,
}

impl Observer for Seen {
    fn scan_started(&mut self, progress: Arc<Progress>) {
        self.started += 1;
        self.progress = Some(progress);
    }
    fn scan_finished(&mut self) {
        self.finished += 1;
    }
}

#[test]
fn one_run_reads_every_source_and_runs_the_steps_in_order() {
    let t = tree();
    let log = write_log(&t);
    let s = session();
    let options = Options::default();
    let plan = plan(&targets(&t, log), &options).unwrap();
    let mut seen = Seen::default();
    let out = s
        .run(&plan, &options, &Step::scan_defaults(|_| false), &mut seen)
        .unwrap();
    assert_eq!((seen.started, seen.finished), (1, 1));
    let progress = seen.progress.unwrap();
    assert_eq!(
        progress.files.load(Ordering::Relaxed),
        out.summary.files_scanned
    );
    assert_eq!(out.summary.files_scanned, 4, "three files and one log");
    let secrets: Vec<&str> = out
        .findings
        .iter()
        .map(|f| f.secret.expose().as_str())
        .collect();
    for want in [&t.github, &t.stripe, &t.log_token] {
        assert!(secrets.contains(&want.as_str()), "{want} in {secrets:?}");
    }
    let shared: Vec<_> = out
        .findings
        .iter()
        .filter(|f| f.rule_id == keytrail_session::steps::envsep::RULE_ID)
        .collect();
    assert_eq!(shared.len(), 1, "the dev/prod key is one shared finding");
    assert_eq!(shared[0].secret.expose(), &t.stripe);
    let in_log = out
        .findings
        .iter()
        .find(|f| f.secret.expose() == &t.log_token)
        .unwrap();
    assert_eq!(in_log.locations[0].line, 2, "the log's own line");
    assert_eq!(out.summary.findings, out.findings.len() as u64);
    assert_eq!(
        out.summary.locations,
        out.findings
            .iter()
            .map(|f| f.locations.len() as u64)
            .sum::<u64>()
    );
    assert!(out.failed_targets.is_empty() && out.errors.is_empty());
}

#[test]
fn allow_list_then_baseline_each_counted_where_they_drop() {
    let t = tree();
    let log = write_log(&t);
    let s = session();
    let options = Options::default();
    let plan = plan(&targets(&t, log), &options).unwrap();
    // Record the GitHub token in a baseline; allow-list the log's token.
    let all = s
        .run(&plan, &options, &[], &mut keytrail_session::NoProgress)
        .unwrap();
    let mut baseline = Baseline::new();
    for f in all
        .findings
        .iter()
        .filter(|f| f.secret.expose() == &t.github)
    {
        baseline.add(f);
    }
    let log_token = t.log_token.clone();
    let mut steps = Step::scan_defaults(move |f| f.secret.expose() == &log_token);
    steps.push(Step::Baseline(&baseline));
    let out = s
        .run(&plan, &options, &steps, &mut keytrail_session::NoProgress)
        .unwrap();
    assert!(out.findings.iter().all(|f| f.secret.expose() != &t.github));
    assert!(
        out.findings
            .iter()
            .all(|f| f.secret.expose() != &t.log_token)
    );
    assert_eq!(out.summary.allowed, 1);
    assert_eq!(out.summary.suppressed_by_baseline, 1);
    // Without the steps the environment finding is not added.
    assert!(
        all.findings
            .iter()
            .all(|f| f.rule_id != keytrail_session::steps::envsep::RULE_ID)
    );
    // A `Keep` step drops without counting.
    let out = s
        .run(
            &plan,
            &options,
            &[Step::Keep(Box::new(|_| false))],
            &mut keytrail_session::NoProgress,
        )
        .unwrap();
    assert!(out.findings.is_empty());
    assert_eq!(
        (out.summary.allowed, out.summary.suppressed_by_baseline),
        (0, 0)
    );
}

#[test]
fn a_log_that_cannot_be_read_fails_its_target_and_the_rest_is_scanned() {
    let t = tree();
    let missing = t.dir.path().join("logs/missing.log");
    let s = session();
    let options = Options::default();
    let plan = plan(&targets(&t, missing.clone()), &options).unwrap();
    let out = s
        .run(&plan, &options, &[], &mut keytrail_session::NoProgress)
        .unwrap();
    let name = missing.display().to_string();
    assert_eq!(out.failed_targets, vec![name.clone()]);
    assert!(
        out.errors
            .iter()
            .any(|d| d.subject == name && d.kind == "unreadable")
    );
    assert_eq!(out.summary.unreadable, 1);
    assert!(out.findings.iter().any(|f| f.secret.expose() == &t.github));
}

#[test]
fn a_git_gate_needs_a_repository_and_missing_paths_are_refused() {
    let t = tree();
    let options = Options {
        git: GitSelection {
            since_commit: Some("HEAD~1".into()),
            ..GitSelection::default()
        },
        ..Options::default()
    };
    let targets = Targets {
        paths: vec![t.dir.path().join("src")],
        ..Targets::default()
    };
    let err = plan(&targets, &options).err().expect("refused").to_string();
    assert!(err.contains("is not a git repository"), "{err}");
    let missing = Targets {
        paths: vec![t.dir.path().join("nope")],
        ..Targets::default()
    };
    let err = missing.check_paths_exist().unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

/// A token compiled into a `.pyc` whose source was deleted is found through
/// the binary's printable strings, at its byte offset in the `.pyc`; with
/// binary scanning off the file is a `binary` skip. The `.pyc` is made by
/// the local `python3` (`py_compile`).
#[test]
fn a_token_compiled_into_a_pyc_is_found() {
    let mut g = FakeSecrets::new(5);
    let token = g.github_classic();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("settings.py");
    std::fs::write(&src, format!("GITHUB_TOKEN = \"{token}\"\nDEBUG = False\n")).unwrap();
    let pyc = dir.path().join("settings.cpython.pyc");
    let st = std::process::Command::new("python3")
        .args(["-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"])
        .arg(&src)
        .arg(&pyc)
        .status()
        .expect("python3 is needed to compile a .pyc (install python3)");
    assert!(st.success(), "py_compile failed");
    std::fs::remove_file(&src).unwrap();
    let bytes = std::fs::read(&pyc).unwrap();
    let at = bytes
        .windows(token.len())
        .position(|w| w == token.as_bytes())
        .expect("the token is in the .pyc");

    let s = session();
    let targets = Targets {
        paths: vec![dir.path().to_path_buf()],
        ..Targets::default()
    };
    let options = Options::default();
    let out = s
        .run(
            &plan(&targets, &options).unwrap(),
            &options,
            &Step::scan_defaults(|_| false),
            &mut Seen::default(),
        )
        .unwrap();
    let f = out
        .findings
        .iter()
        .find(|f| f.secret.expose() == &token)
        .unwrap_or_else(|| panic!("token not found: {:?}", out.findings));
    assert_eq!(f.rule_id, "github.pat.classic");
    assert_eq!(f.locations[0].offset, at as u64);

    let mut off = Options::default();
    off.fs.scan_binary = false;
    let out = s
        .run(
            &plan(&targets, &off).unwrap(),
            &off,
            &Step::scan_defaults(|_| false),
            &mut Seen::default(),
        )
        .unwrap();
    assert!(out.findings.is_empty(), "{:?}", out.findings);
}
