//! Tests of the git source against repositories built at test time with
//! the `git` command line (fixed authors and dates), with `git cat-file` as
//! the oracle of which blobs exist.
#![cfg(feature = "git")]

#[cfg(feature = "git-https")]
#[path = "support/git_http.rs"]
mod git_http;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use keytrail_input::git::{self, GitOptions, GitStats, kinds};
use keytrail_input::{Blob, BlobSink, Content};
use keytrail_types::{Diagnostic, GitBlobState, GitOrigin, Origin};

/// A fake credential, unique per call: a random-looking base62 body behind a
/// vendor-like prefix, generated at test time (never a real token).
fn fake_secret(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut x = 0x9E37_79B9_7F4A_7C15u64
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0xA076_1D64_78BD_642F)
        ^ u64::from(std::process::id());
    for b in tag.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body: String = (0..36)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % 62) as usize] as char
        })
        .collect();
    format!("ktfake_{body}")
}

/// A repository under construction in a temporary directory.
struct Repo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    home: PathBuf,
    clock: std::cell::Cell<u64>,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let repo = Repo {
            _tmp: tmp,
            dir,
            home,
            clock: std::cell::Cell::new(1_700_000_000),
        };
        repo.git(&["-c", "init.defaultBranch=main", "init", "-q"]);
        repo
    }

    /// Run git in the repository with a fixed identity and date; returns stdout.
    fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.dir, args)
    }

    fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let t = self.clock.get() + 60;
        self.clock.set(t);
        let date = format!("@{t} +0100");
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_NAME", "Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_DATE", &date)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn write(&self, path: &str, content: &str) {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// `git add -A && git commit -m MSG`; returns the new commit id.
    fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.rev("HEAD")
    }

    fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev]).trim().to_string()
    }

    /// Every blob id in the object database, per git itself.
    fn all_blobs(&self, git_dir: &Path) -> BTreeSet<String> {
        self.git_in(
            git_dir,
            &[
                "cat-file",
                "--batch-all-objects",
                "--batch-check=%(objecttype) %(objectname)",
            ],
        )
        .lines()
        .filter_map(|l| l.strip_prefix("blob "))
        .map(str::to_string)
        .collect()
    }

    fn hash_of(&self, content: &str) -> String {
        let p = self.home.join("hash-input");
        std::fs::write(&p, content).unwrap();
        self.git(&["hash-object", p.to_str().unwrap()])
            .trim()
            .to_string()
    }
}

/// What a scan delivered.
#[derive(Default)]
struct Collected {
    blobs: Mutex<Vec<(String, GitOrigin, Vec<u8>)>>,
    messages: Mutex<Vec<(GitOrigin, Vec<u8>)>>,
    diags: Mutex<Vec<Diagnostic>>,
}

impl BlobSink for Collected {
    fn blob(&self, blob: Blob) {
        let Origin::Git(origin) = blob.origin else {
            panic!("git source delivered a non-git origin: {:?}", blob.origin);
        };
        let Content::Bytes(bytes) = blob.content else {
            panic!("git blobs are delivered in memory");
        };
        if blob.path == git::COMMIT_MESSAGE_PATH {
            self.messages.lock().unwrap().push((origin, bytes));
        } else {
            self.blobs.lock().unwrap().push((blob.path, origin, bytes));
        }
    }
    fn diagnostic(&self, diag: Diagnostic) {
        self.diags.lock().unwrap().push(diag);
    }
}

struct Scan {
    stats: GitStats,
    blobs: Vec<(String, GitOrigin, Vec<u8>)>,
    /// Commit messages (delivered at `git::COMMIT_MESSAGE_PATH`).
    messages: Vec<(GitOrigin, Vec<u8>)>,
    diags: Vec<Diagnostic>,
}

impl Scan {
    fn run(path: &Path, opts: &GitOptions) -> Scan {
        let sink = Collected::default();
        let stats = git::scan_repository(path, opts, &sink);
        let scan = Scan {
            stats,
            blobs: sink.blobs.into_inner().unwrap(),
            messages: sink.messages.into_inner().unwrap(),
            diags: sink.diags.into_inner().unwrap(),
        };
        scan.assert_each_blob_once();
        scan
    }

    fn full(path: &Path) -> Scan {
        Scan::run(path, &GitOptions::default())
    }

    fn assert_each_blob_once(&self) {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        // Members of a committed archive share their archive's blob id.
        for (_, o, _) in self.blobs.iter().filter(|(p, _, _)| !p.contains('!')) {
            *counts.entry(&o.blob).or_default() += 1;
        }
        let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dups.is_empty(), "blobs delivered more than once: {dups:?}");
    }

    fn ids(&self) -> BTreeSet<String> {
        self.blobs.iter().map(|(_, o, _)| o.blob.clone()).collect()
    }

    /// The one delivered blob containing `needle`.
    fn containing(&self, needle: &str) -> (&str, &GitOrigin) {
        let hits: Vec<_> = self
            .blobs
            .iter()
            .filter(|(_, _, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "expected one blob containing the secret, got {}",
            hits.len()
        );
        (hits[0].0.as_str(), &hits[0].1)
    }

    fn has(&self, needle: &str) -> bool {
        self.blobs
            .iter()
            .any(|(_, _, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
    }

    fn diags_of(&self, kind: &str) -> Vec<&Diagnostic> {
        self.diags.iter().filter(|d| d.kind == kind).collect()
    }
}

#[test]
fn secret_added_then_deleted_is_found_with_provenance() {
    let r = Repo::new();
    let secret = fake_secret("deleted");
    r.write("README.md", "hello\n");
    r.write("config/app.env", &format!("TOKEN={secret}\n"));
    let c1 = r.commit("add config");
    std::fs::remove_file(r.dir.join("config/app.env")).unwrap();
    r.write("README.md", "hello again\n");
    let c2 = r.commit("remove config");
    assert_ne!(c1, c2);

    let scan = Scan::full(&r.dir);
    assert_eq!(
        scan.ids(),
        r.all_blobs(&r.dir),
        "every blob in the database, once"
    );
    let (path, o) = scan.containing(&secret);
    assert_eq!(path, "config/app.env");
    assert_eq!(o.commit.as_deref(), Some(c1.as_str()));
    assert_eq!(o.author.as_deref(), Some("Dev <dev@example.com>"));
    assert_eq!(o.summary.as_deref(), Some("add config"));
    let date = o.author_date.as_deref().unwrap();
    assert!(
        date.ends_with("+01:00") && date.starts_with("2023-11-14T"),
        "{date}"
    );
    assert!(!o.in_head, "deleted in the last commit");
    assert_eq!(o.state, GitBlobState::Committed);
    assert_eq!(o.introductions.len(), 1);
    assert_eq!(o.introductions[0].commit, c1);
    assert_eq!(o.introductions[0].path, "config/app.env");
    assert!(o.introductions[0].reachable);
    assert_eq!(o.blob, r.hash_of(&format!("TOKEN={secret}\n")));
    assert_eq!(scan.stats.commits, 2);
    assert_eq!(scan.stats.dangling_commits, 0);
    assert_eq!(scan.stats.errors, 0, "{:?}", scan.diags);
    // README.md v2 is in HEAD, v1 is not.
    let (_, readme) = scan.containing("hello again");
    assert!(readme.in_head);
}

#[test]
fn secret_on_unmerged_branch_is_found() {
    let r = Repo::new();
    let secret = fake_secret("branch");
    r.write("a.txt", "a\n");
    r.commit("base");
    r.git(&["checkout", "-q", "-b", "feature"]);
    r.write("feature/creds.yml", &format!("key: {secret}\n"));
    let c = r.commit("feature work");
    r.git(&["checkout", "-q", "main"]);

    let scan = Scan::full(&r.dir);
    let (path, o) = scan.containing(&secret);
    assert_eq!(path, "feature/creds.yml");
    assert_eq!(o.commit.as_deref(), Some(c.as_str()));
    assert!(!o.in_head);
    assert_eq!(o.state, GitBlobState::Committed, "a branch reaches it");
}

#[test]
fn renamed_file_has_every_introduction_and_head_path() {
    let r = Repo::new();
    let secret = fake_secret("renamed");
    r.write("old/name.cfg", &format!("password={secret}\n"));
    let c1 = r.commit("add");
    r.git(&["mv", "old/name.cfg", "new.cfg"]);
    let c2 = r.commit("rename");

    let scan = Scan::full(&r.dir);
    let (path, o) = scan.containing(&secret);
    assert_eq!(path, "new.cfg", "the path where the blob still is in HEAD");
    assert!(o.in_head);
    assert_eq!(
        o.commit.as_deref(),
        Some(c1.as_str()),
        "the commit that brought the secret in, not the rename"
    );
    assert_eq!(o.summary.as_deref(), Some("add"));
    let intro: Vec<_> = o
        .introductions
        .iter()
        .map(|i| (i.commit.as_str(), i.path.as_str()))
        .collect();
    assert_eq!(
        intro,
        vec![(c1.as_str(), "old/name.cfg"), (c2.as_str(), "new.cfg")]
    );
}

/// Scripted histories give every commit one timestamp, and rebases or
/// cherry-picks leave author dates out of order: the introducing commit is
/// the earliest in history, whatever the dates say.
#[test]
fn renamed_file_is_attributed_by_history_order_not_by_date() {
    for (label, dates) in [
        ("same date", [5_000, 5_000]),
        ("reversed dates", [9_000, 1_000]),
    ] {
        let r = Repo::new();
        let secret = fake_secret("renamed-dated");
        r.write("README", "x\n");
        r.commit("base");
        r.write("conf/app.env", &format!("TOKEN={secret}\n"));
        r.clock.set(1_700_000_000 + dates[0]);
        let c1 = r.commit("add");
        r.git(&["mv", "conf/app.env", "app.env"]);
        r.clock.set(1_700_000_000 + dates[1]);
        let c2 = r.commit("move");
        r.write("other/copy.env", &format!("TOKEN={secret}\n"));
        r.clock.set(1_700_000_000 + dates[1] - 500);
        let c3 = r.commit("copy");

        let scan = Scan::full(&r.dir);
        let (path, o) = scan.containing(&secret);
        assert_eq!(o.commit.as_deref(), Some(c1.as_str()), "{label}");
        assert!(o.in_head, "{label}");
        assert!(
            path == "app.env" || path == "other/copy.env",
            "{label}: {path}"
        );
        let order: Vec<_> = o.introductions.iter().map(|i| i.commit.as_str()).collect();
        assert_eq!(
            order,
            vec![c1.as_str(), c2.as_str(), c3.as_str()],
            "{label}"
        );
    }
}

#[test]
fn secret_introduced_by_a_merge_commit_is_attributed_to_it() {
    let r = Repo::new();
    let secret = fake_secret("merge");
    r.write("base.txt", "base\n");
    r.commit("base");
    r.git(&["checkout", "-q", "-b", "topic"]);
    r.write("topic.txt", "topic work\n");
    let topic = r.commit("topic");
    r.git(&["checkout", "-q", "main"]);
    r.write("main.txt", "main work\n");
    r.commit("main");
    r.git(&["merge", "-q", "--no-ff", "--no-commit", "topic"]);
    // An "evil merge": content that exists in neither parent.
    r.write("merge-fix.env", &format!("API_KEY={secret}\n"));
    r.git(&["add", "-A"]);
    r.git(&["commit", "-q", "-m", "merge topic"]);
    let merge = r.rev("HEAD");
    assert_eq!(
        r.git(&["rev-list", "--parents", "-n1", "HEAD"])
            .split_whitespace()
            .count(),
        3
    );

    let scan = Scan::full(&r.dir);
    let (_, o) = scan.containing(&secret);
    assert_eq!(o.commit.as_deref(), Some(merge.as_str()));
    assert_eq!(o.introductions.len(), 1);
    assert!(o.in_head);
    // The topic's file came in through the merge too, but the merge did not
    // introduce it: one parent already had it at that path.
    let (_, t) = scan.containing("topic work");
    let commits: Vec<_> = t.introductions.iter().map(|i| i.commit.as_str()).collect();
    assert_eq!(commits, vec![topic.as_str()]);
}

#[test]
fn amended_away_and_unreachable_blobs_are_found() {
    let r = Repo::new();
    let amended = fake_secret("amended");
    let orphan = fake_secret("orphan");
    r.write("x.txt", "x\n");
    r.commit("first");
    r.write("deploy.sh", &format!("export TOKEN={amended}\n"));
    let bad = r.commit("deploy");
    r.write("deploy.sh", "export TOKEN=$TOKEN\n");
    r.git(&["add", "-A"]);
    r.git(&["commit", "-q", "--amend", "-m", "deploy"]);
    assert_ne!(r.rev("HEAD"), bad);
    // Staged, then unstaged: the blob stays in the database, in no commit.
    r.write("oops.txt", &format!("{orphan}\n"));
    r.git(&["add", "oops.txt"]);
    r.git(&["reset", "-q", "oops.txt"]);
    std::fs::remove_file(r.dir.join("oops.txt")).unwrap();

    let scan = Scan::full(&r.dir);
    assert_eq!(scan.ids(), r.all_blobs(&r.dir));
    let (path, o) = scan.containing(&amended);
    assert_eq!(path, "deploy.sh");
    assert_eq!(o.commit.as_deref(), Some(bad.as_str()));
    assert_eq!(o.state, GitBlobState::Dangling);
    assert!(!o.introductions[0].reachable);
    assert!(!o.in_head);
    assert_eq!(scan.stats.dangling_commits, 1);

    let (path, o) = scan.containing(&orphan);
    assert_eq!(o.commit, None);
    assert_eq!(o.state, GitBlobState::Unreachable);
    assert!(o.introductions.is_empty());
    assert_eq!(path, format!("<unreachable>/{}", o.blob));
    assert_eq!(scan.stats.unreachable_blobs, 1);
}

#[test]
fn loose_and_packed_repositories_give_the_same_blobs() {
    let r = Repo::new();
    let secret = fake_secret("gc");
    for i in 0..5 {
        r.write(
            "src/lib.rs",
            &format!(
                "// version {i}\nfn f() -> u32 {{ {i} }}\n{}",
                "x\n".repeat(200 + i)
            ),
        );
        if i == 2 {
            r.write("secrets.txt", &format!("{secret}\n"));
        }
        if i == 3 {
            std::fs::remove_file(r.dir.join("secrets.txt")).unwrap();
        }
        r.commit(&format!("v{i}"));
    }
    let loose = Scan::full(&r.dir);
    assert!(loose.has(&secret));
    let packs = || {
        std::fs::read_dir(r.dir.join(".git/objects/pack"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(packs(), 0, "fixture starts with loose objects only");

    // Deltified packs: `git gc --aggressive` stores versions as deltas.
    r.git(&["gc", "-q", "--aggressive", "--prune=now"]);
    assert!(packs() > 0);
    let packed = Scan::full(&r.dir);
    assert_eq!(packed.ids(), loose.ids());
    assert_eq!(packed.ids(), r.all_blobs(&r.dir));
    let (path, o) = packed.containing(&secret);
    assert_eq!(path, "secrets.txt");
    assert!(o.commit.is_some());
    // Contents are byte-identical after delta decoding.
    let mut a: Vec<_> = loose
        .blobs
        .iter()
        .map(|(_, o, b)| (o.blob.clone(), b.clone()))
        .collect();
    let mut b: Vec<_> = packed
        .blobs
        .iter()
        .map(|(_, o, b)| (o.blob.clone(), b.clone()))
        .collect();
    a.sort();
    b.sort();
    assert!(a == b, "decoded contents differ between loose and packed");
    // With a commit-graph file too.
    r.git(&["commit-graph", "write", "--reachable"]);
    assert_eq!(Scan::full(&r.dir).ids(), loose.ids());
}

/// A full scan of a packed repository decodes its trees ahead, by pack
/// traversal, and diffs them from tables; loose trees are read one by
/// one. Both must give the same provenance: every path, origin and
/// introduction, with and without `--exclude`, merges, renames, modes,
/// symlinks and submodules included.
#[test]
fn packed_trees_give_the_same_provenance_as_loose_ones() {
    let r = Repo::new();
    let secret = fake_secret("trees");
    for i in 0..6 {
        r.write(
            "rules/windows/process/proc_a.yml",
            &format!("title: a {i}\n{}", "detection: x\n".repeat(40 + i)),
        );
        r.write(&format!("rules/linux/rule_{i}.yml"), &format!("id: {i}\n"));
        r.write("docs/readme.md", &format!("readme {}\n", i % 2));
        if i == 1 {
            r.write("rules/windows/creds.env", &format!("K={secret}\n"));
            r.write("vendor/lib/x.txt", "vendored\n");
        }
        if i == 3 {
            // A rename, and the same content at a second path.
            r.write("config/app.toml", "app = 1\n");
            r.git(&["mv", "rules/windows/creds.env", "config/creds.env"]);
            r.write("rules/copy.env", &format!("K={secret}\n"));
        }
        r.commit(&format!("v{i}"));
    }
    r.git(&["checkout", "-q", "-b", "topic"]);
    r.write("rules/linux/rule_topic.yml", "topic\n");
    r.write("rules/windows/process/proc_b.yml", "b\n");
    r.commit("topic");
    r.git(&["checkout", "-q", "main"]);
    r.write("rules/linux/rule_main.yml", "main\n");
    r.commit("main");
    r.git(&["merge", "-q", "--no-ff", "--no-commit", "topic"]);
    r.write("rules/merge-fix.env", "evil merge\n");
    r.git(&["add", "-A"]);
    r.git(&["commit", "-q", "-m", "merge topic"]);
    // A mode change, a symlink, a submodule and a deleted directory.
    r.git(&["update-index", "--chmod=+x", "docs/readme.md"]);
    r.git(&["commit", "-q", "-m", "executable"]);
    #[cfg(unix)]
    std::os::unix::fs::symlink("config/creds.env", r.dir.join("link.env")).unwrap();
    let c = r.commit("link");
    r.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{c},vendor/sub"),
    ]);
    r.git(&["commit", "-q", "-m", "submodule"]);
    std::fs::remove_dir_all(r.dir.join("rules/linux")).unwrap();
    r.commit("drop linux rules");

    let excluding = GitOptions {
        content: keytrail_input::FsOptions {
            excludes: vec!["vendor".into(), "rules/copy.env".into()],
            ..Default::default()
        },
        ..GitOptions::default()
    };
    let summary = |scan: &Scan| {
        let mut blobs: Vec<(String, GitOrigin)> = scan
            .blobs
            .iter()
            .map(|(p, o, _)| (p.clone(), o.clone()))
            .collect();
        blobs.sort_by(|a, b| a.1.blob.cmp(&b.1.blob).then(a.0.cmp(&b.0)));
        let mut diags: Vec<(String, String, String)> = scan
            .diags
            .iter()
            .map(|d| (d.kind.clone(), d.subject.clone(), d.message.clone()))
            .collect();
        diags.sort();
        (
            blobs,
            diags,
            scan.stats.blobs_excluded,
            scan.stats.submodules,
        )
    };
    let loose = summary(&Scan::full(&r.dir));
    let loose_excluding = summary(&Scan::run(&r.dir, &excluding));
    let renamed = loose
        .0
        .iter()
        .find(|(p, _)| p == "config/creds.env")
        .expect("the renamed secret");
    assert!(renamed.1.introductions.len() >= 2, "{:?}", renamed.1);
    assert!(loose_excluding.2 > 0, "something is excluded");

    r.git(&["gc", "-q", "--aggressive", "--prune=now"]);
    let packs = std::fs::read_dir(r.dir.join(".git/objects/pack"))
        .unwrap()
        .count();
    assert!(packs > 0);
    assert_eq!(summary(&Scan::full(&r.dir)), loose);
    assert_eq!(summary(&Scan::run(&r.dir, &excluding)), loose_excluding);
}

#[test]
fn bare_repository_and_dot_git_dir_are_repositories() {
    let r = Repo::new();
    let secret = fake_secret("bare");
    r.write("k.pem", &format!("{secret}\n"));
    let c = r.commit("key");
    let bare = r.dir.parent().unwrap().join("bare.git");
    r.git(&[
        "clone",
        "-q",
        "--bare",
        r.dir.to_str().unwrap(),
        bare.to_str().unwrap(),
    ]);

    assert!(git::is_repository(&r.dir));
    assert!(git::is_repository(&r.dir.join(".git")));
    assert!(git::is_repository(&bare));
    assert!(!git::is_repository(&r.home));

    let via_bare = Scan::full(&bare);
    let (_, o) = via_bare.containing(&secret);
    assert_eq!(o.commit.as_deref(), Some(c.as_str()));
    assert!(o.in_head);
    assert!(via_bare.stats.worktree_paths.is_empty());

    let via_dot_git = Scan::full(&r.dir.join(".git"));
    assert_eq!(via_dot_git.ids(), Scan::full(&r.dir).ids());
}

#[test]
fn not_a_repository_is_a_diagnostic() {
    let tmp = tempfile::tempdir().unwrap();
    let scan = Scan::full(tmp.path());
    assert!(scan.blobs.is_empty());
    assert_eq!(scan.diags_of(kinds::GIT_OPEN).len(), 1);
    assert!(scan.diags[0].is_error);
    assert_eq!(scan.stats.errors, 1);
}

#[test]
fn file_url_is_cloned_with_every_branch() {
    let r = Repo::new();
    let on_main = fake_secret("main");
    let on_branch = fake_secret("side");
    r.write("a.env", &format!("A={on_main}\n"));
    r.commit("main");
    r.git(&["checkout", "-q", "-b", "side"]);
    r.write("b.env", &format!("B={on_branch}\n"));
    r.commit("side");
    r.git(&["checkout", "-q", "main"]);

    let into = r.home.join("clone");
    let url = format!("file://{}", r.dir.display());
    let cloned = git::clone_url(&url, &into).expect("clone succeeds");
    assert!(git::is_repository(&cloned));
    let scan = Scan::full(&cloned);
    assert!(scan.has(&on_main));
    assert!(scan.has(&on_branch), "non-default branches are fetched");

    let err = git::clone_url("file:///nonexistent/repo.git", &r.home.join("x")).unwrap_err();
    assert_eq!(err.kind, kinds::GIT_CLONE);
    assert!(err.is_error);
}

#[test]
fn since_commit_and_range_scan_only_new_blobs() {
    let r = Repo::new();
    let s1 = fake_secret("s1");
    let s2 = fake_secret("s2");
    let s3 = fake_secret("s3");
    r.write("one.txt", &format!("{s1}\n"));
    let c1 = r.commit("one");
    r.write("two.txt", &format!("{s2}\n"));
    let c2 = r.commit("two");
    r.write("three.txt", &format!("{s3}\n"));
    r.commit("three");

    let since = Scan::run(
        &r.dir,
        &GitOptions {
            since_commit: Some(c1.clone()),
            ..GitOptions::default()
        },
    );
    assert!(!since.has(&s1));
    assert!(since.has(&s2) && since.has(&s3));
    assert_eq!(since.blobs.len(), 2, "only the blobs the range introduced");
    assert_eq!(since.stats.commits, 2);
    assert!(since.stats.worktree_paths.is_empty());

    let range = Scan::run(
        &r.dir,
        &GitOptions {
            range: Some(format!("{c1}..{c2}")),
            ..GitOptions::default()
        },
    );
    assert!(range.has(&s2) && !range.has(&s1) && !range.has(&s3));
    let (_, o) = range.containing(&s2);
    assert_eq!(o.commit.as_deref(), Some(c2.as_str()));

    let bad = Scan::run(
        &r.dir,
        &GitOptions {
            range: Some("nope..HEAD".into()),
            ..GitOptions::default()
        },
    );
    assert!(bad.blobs.is_empty());
    assert_eq!(bad.diags_of(kinds::GIT_REVISION).len(), 1);
    assert!(bad.stats.errors > 0);
}

#[test]
fn since_refs_scans_only_commits_new_since_the_earlier_tips() {
    use git::SinceRefs;
    let r = Repo::new();
    let s1 = fake_secret("s1");
    let s2 = fake_secret("s2");
    let s3 = fake_secret("s3");
    let s4 = fake_secret("s4");
    r.write("one.txt", &format!("{s1}\n"));
    r.commit("one");
    r.git(&["tag", "v1"]);
    let since = |old: &std::collections::BTreeMap<String, String>| {
        Scan::run(
            &r.dir,
            &GitOptions {
                since_refs: Some(old.clone()),
                ..GitOptions::default()
            },
        )
    };
    // No earlier scan: everything, and the tips to remember.
    let first = since(&Default::default());
    assert!(first.has(&s1));
    assert_eq!(
        first.stats.since_refs,
        Some(SinceRefs::Full("no earlier scan".into()))
    );
    let tips = first.stats.refs.clone();
    assert_eq!(
        tips.keys().collect::<Vec<_>>(),
        ["refs/heads/main", "refs/tags/v1"]
    );
    assert_eq!(tips["refs/heads/main"], r.rev("main"));

    // A commit on main and a new branch: only their blobs and messages.
    r.write("two.txt", &format!("{s2}\n"));
    let c2 = r.commit("two");
    r.git(&["checkout", "-q", "-b", "feature"]);
    r.write("three.txt", &format!("{s3}\n"));
    r.commit("three");
    r.git(&["checkout", "-q", "main"]);
    let next = since(&tips);
    assert_eq!(next.stats.since_refs, Some(SinceRefs::New));
    assert!(!next.has(&s1), "an earlier commit's blob is not read again");
    assert!(next.has(&s2) && next.has(&s3));
    assert_eq!(next.stats.commits, 2);
    assert_eq!(next.messages.len(), 2);
    assert_eq!(next.containing(&s2).1.commit.as_deref(), Some(c2.as_str()));
    // Nothing new: nothing read, still incremental.
    let tips2 = next.stats.refs.clone();
    let idle = since(&tips2);
    assert_eq!(idle.stats.since_refs, Some(SinceRefs::New));
    assert!(idle.blobs.is_empty() && idle.messages.is_empty());
    // A deleted branch is no rewrite.
    r.git(&["branch", "-q", "-D", "feature"]);
    assert_eq!(since(&tips2).stats.since_refs, Some(SinceRefs::New));

    // main force-pushed (its tip no longer descends from the earlier one):
    // the whole repository.
    let tips3 = since(&tips2).stats.refs;
    r.git(&["reset", "-q", "--hard", "HEAD~1"]);
    r.write("four.txt", &format!("{s4}\n"));
    r.commit("four");
    let forced = since(&tips3);
    match &forced.stats.since_refs {
        Some(SinceRefs::Full(why)) => {
            assert!(why.contains("refs/heads/main was rewritten"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(forced.has(&s1) && forced.has(&s4));
    // A moved tag too; and a tip that is not a commit id.
    let tips4 = forced.stats.refs.clone();
    r.git(&["tag", "-f", "v1", "HEAD"]);
    let mut moved = tips4.clone();
    moved.insert("refs/tags/v1".into(), c2.clone());
    assert!(matches!(
        since(&moved).stats.since_refs,
        Some(SinceRefs::Full(w)) if w.contains("refs/tags/v1 was rewritten")
    ));
    let mut bad = tips4;
    bad.insert("refs/heads/main".into(), "nope".into());
    assert!(matches!(
        since(&bad).stats.since_refs,
        Some(SinceRefs::Full(w)) if w.contains("not a commit id")
    ));
}

#[test]
fn staged_scans_only_index_changes() {
    let r = Repo::new();
    let staged = fake_secret("staged");
    let unstaged = fake_secret("unstaged");
    r.write("app.py", "print('hi')\n");
    r.write("keep.txt", "unchanged\n");
    r.commit("init");
    r.write("app.py", &format!("print('hi')\nKEY = '{staged}'\n"));
    r.write("new/file.cfg", "fresh\n");
    r.git(&["add", "-A"]);
    r.write("keep.txt", &format!("{unstaged}\n"));

    let scan = Scan::run(
        &r.dir,
        &GitOptions {
            staged: true,
            ..GitOptions::default()
        },
    );
    let mut paths: Vec<_> = scan.blobs.iter().map(|(p, _, _)| p.as_str()).collect();
    paths.sort();
    assert_eq!(paths, vec!["app.py", "new/file.cfg"]);
    let (_, o) = scan.containing(&staged);
    assert_eq!(o.state, GitBlobState::Staged);
    assert_eq!(o.commit, None);
    assert!(
        !scan.has(&unstaged),
        "work-tree-only changes are not staged"
    );
}

#[test]
fn worktree_changes_are_listed_for_the_file_source() {
    let r = Repo::new();
    r.write("same.txt", "same\n");
    r.write("edited.txt", "v1\n");
    r.commit("init");
    r.write("edited.txt", "v2\n");
    r.write("untracked/.env", "X=1\n");
    let scan = Scan::full(&r.dir);
    let rel: Vec<_> = scan
        .stats
        .worktree_paths
        .iter()
        .map(|p| {
            p.strip_prefix(&r.dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(rel, vec!["edited.txt", "untracked/.env"]);
}

#[test]
fn shallow_clone_warns_that_history_is_incomplete() {
    let r = Repo::new();
    for i in 0..3 {
        r.write("f.txt", &format!("{i}\n"));
        r.commit(&format!("c{i}"));
    }
    let shallow = r.home.join("shallow");
    let url = format!("file://{}", r.dir.display());
    r.git(&[
        "clone",
        "-q",
        "--depth",
        "1",
        &url,
        shallow.to_str().unwrap(),
    ]);
    let scan = Scan::full(&shallow);
    assert!(scan.stats.shallow);
    let warn = scan.diags_of(kinds::GIT_SHALLOW);
    assert_eq!(warn.len(), 1);
    assert!(!warn[0].is_error);
    assert!(scan.has("2\n"));
    assert_eq!(scan.stats.errors, 0, "{:?}", scan.diags);

    let full = Scan::full(&r.dir);
    assert!(!full.stats.shallow);
    assert!(full.diags_of(kinds::GIT_SHALLOW).is_empty());
}

#[test]
fn corrupt_loose_object_is_reported_and_the_scan_goes_on() {
    let r = Repo::new();
    let secret = fake_secret("corrupt");
    r.write("victim.txt", "this blob will be corrupted\n");
    r.write("good.txt", &format!("{secret}\n"));
    r.commit("two files");
    let victim = r.hash_of("this blob will be corrupted\n");
    let obj = r
        .dir
        .join(".git/objects")
        .join(&victim[..2])
        .join(&victim[2..]);
    let mut perms = std::fs::metadata(&obj).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&obj, perms).unwrap();
    std::fs::write(&obj, b"\x78\x9cthis is not zlib at all").unwrap();

    let scan = Scan::full(&r.dir);
    assert!(scan.has(&secret), "the rest of the repository is scanned");
    let errors: Vec<_> = scan.diags.iter().filter(|d| d.is_error).collect();
    assert!(!errors.is_empty());
    assert!(
        errors.iter().any(|d| d.message.contains(&victim)),
        "{errors:?}"
    );
    assert_eq!(
        scan.stats.errors, 1,
        "one corrupt object, reported once: {errors:?}"
    );
    assert!(!scan.ids().contains(&victim));
}

#[test]
fn missing_object_is_reported_and_the_scan_goes_on() {
    let r = Repo::new();
    let secret = fake_secret("missing");
    r.write("gone.txt", "this blob will vanish\n");
    r.write("kept.txt", &format!("{secret}\n"));
    r.commit("two files");
    let gone = r.hash_of("this blob will vanish\n");
    std::fs::remove_file(r.dir.join(".git/objects").join(&gone[..2]).join(&gone[2..])).unwrap();

    let scan = Scan::full(&r.dir);
    assert!(scan.has(&secret));
    let missing = scan.diags_of(kinds::GIT_OBJECT_MISSING);
    assert_eq!(missing.len(), 1, "{:?}", scan.diags);
    assert!(missing[0].is_error && missing[0].message.contains(&gone));
    assert!(missing[0].message.contains("gone.txt"));
    assert_eq!(scan.stats.errors, 1);
}

/// A blob missing from the object database must not hide its work-tree
/// copy: the file matches HEAD, but history could not show its content, so
/// it is listed for the file source (and a corrupt one too).
#[test]
fn a_missing_or_corrupt_head_blob_sends_its_work_tree_copy_to_the_file_source() {
    let r = Repo::new();
    let secret = fake_secret("worktree-copy");
    r.write("gone.env", &format!("TOKEN={secret}\n"));
    r.write("broken.env", "this blob will be corrupted\n");
    r.write("fine.txt", "unchanged and readable\n");
    r.commit("three files");
    let object = |content: &str| {
        let id = r.hash_of(content);
        r.dir.join(".git/objects").join(&id[..2]).join(&id[2..])
    };
    std::fs::remove_file(object(&format!("TOKEN={secret}\n"))).unwrap();
    let broken = object("this blob will be corrupted\n");
    let mut perms = std::fs::metadata(&broken).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&broken, perms).unwrap();
    std::fs::write(&broken, b"\x78\x9cnot zlib").unwrap();

    let scan = Scan::full(&r.dir);
    assert!(!scan.has(&secret), "the blob itself cannot be read");
    assert_eq!(
        scan.diags_of(kinds::GIT_OBJECT_MISSING).len(),
        1,
        "{:?}",
        scan.diags
    );
    let rel: Vec<_> = scan
        .stats
        .worktree_paths
        .iter()
        .map(|p| {
            p.strip_prefix(&r.dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(rel, vec!["broken.env", "gone.env"]);
}

#[test]
fn large_blobs_are_skipped_with_a_diagnostic() {
    let r = Repo::new();
    r.write("big.bin", &"a".repeat(10_000));
    r.write("small.txt", "small\n");
    r.commit("sizes");
    let scan = Scan::run(
        &r.dir,
        &GitOptions {
            max_blob_bytes: 1_000,
            ..GitOptions::default()
        },
    );
    assert!(scan.has("small"));
    assert_eq!(scan.blobs.len(), 1);
    assert_eq!(scan.stats.blobs_too_large, 1);
    let d = scan.diags_of(kinds::GIT_BLOB_TOO_LARGE);
    assert_eq!(d.len(), 1);
    assert!(d[0].subject.ends_with("big.bin") && !d[0].is_error);
}

#[test]
fn submodules_are_listed_not_followed() {
    let r = Repo::new();
    r.write("a.txt", "a\n");
    let c = r.commit("a");
    r.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{c},vendor/lib"),
    ]);
    r.git(&["commit", "-q", "-m", "add submodule"]);
    let scan = Scan::full(&r.dir);
    let notes = scan.diags_of(kinds::GIT_SUBMODULE);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].subject.ends_with("vendor/lib") && !notes[0].is_error);
    assert!(notes[0].message.contains(&c));
    assert_eq!(scan.stats.submodules, 1);
    assert_eq!(scan.stats.errors, 0, "{:?}", scan.diags);
}

#[test]
fn binary_blobs_are_skipped_and_committed_archives_opened() {
    use std::io::Write;
    let r = Repo::new();
    let secret = fake_secret("gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("DB_PASSWORD={secret}\n").as_bytes())
        .unwrap();
    std::fs::create_dir_all(r.dir.join("backup")).unwrap();
    std::fs::write(r.dir.join("backup/config.env.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        r.dir.join("logo.png"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01",
    )
    .unwrap();
    r.commit("assets");
    std::fs::remove_dir_all(r.dir.join("backup")).unwrap();
    r.commit("drop backup");

    let scan = Scan::full(&r.dir);
    let (path, o) = scan.containing(&secret);
    assert!(path.starts_with("backup/config.env.gz!"), "{path}");
    assert_eq!(o.commit.as_deref(), Some(r.rev("HEAD~1").as_str()));
    assert!(!o.in_head);
    let binary = scan.diags_of("binary");
    assert_eq!(binary.len(), 1, "{:?}", scan.diags);
    assert_eq!(binary[0].subject, "logo.png");
    assert!(!scan.blobs.iter().any(|(p, _, _)| p == "logo.png"));
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_are_delivered_lossily() {
    use std::os::unix::ffi::OsStrExt;
    let r = Repo::new();
    let secret = fake_secret("latin1");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.cfg");
    std::fs::write(r.dir.join(name), format!("{secret}\n")).unwrap();
    r.commit("latin-1 name");
    let scan = Scan::full(&r.dir);
    let (path, o) = scan.containing(&secret);
    assert_eq!(path, "caf\u{fffd}.cfg");
    assert!(o.in_head);
}

#[test]
fn excluded_history_paths_are_not_scanned() {
    let r = Repo::new();
    let vendored = fake_secret("vendored");
    let fixture = fake_secret("fixture");
    let shared = fake_secret("shared");
    let kept = fake_secret("kept");
    r.write("vendor/lib/creds.env", &format!("V={vendored}\n"));
    r.write("tests/fixtures/key.env", &format!("F={fixture}\n"));
    r.write("app/min.js", "var x = 1;\n");
    r.write("app/bundle.min.js", &format!("var k = '{kept}';\n"));
    r.write("fixtures/copy.env", &format!("S={shared}\n"));
    let c1 = r.commit("add files");
    // The same content later at a path that is not excluded.
    r.write("config/real.env", &format!("S={shared}\n"));
    let c2 = r.commit("real config");
    // A vendored secret deleted later stays excluded (not "unreachable").
    std::fs::remove_dir_all(r.dir.join("vendor")).unwrap();
    r.commit("drop vendor");

    let opts = GitOptions {
        content: keytrail_input::FsOptions {
            excludes: vec![
                "vendor".into(),
                "tests/fixtures/**".into(),
                "fixtures/*".into(),
            ],
            ..Default::default()
        },
        ..GitOptions::default()
    };
    let scan = Scan::run(&r.dir, &opts);
    assert!(
        !scan.has(&vendored),
        "a directory name glob excludes below it"
    );
    assert!(!scan.has(&fixture), "an anchored `dir/**` glob excludes");
    assert!(scan.has(&kept), "non-matching paths are scanned");
    let (path, o) = scan.containing(&shared);
    assert_eq!(path, "config/real.env");
    assert_eq!(o.commit.as_deref(), Some(c2.as_str()));
    let paths: Vec<_> = o.introductions.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["config/real.env"],
        "excluded introductions are hidden"
    );
    assert_ne!(c1, c2);
    assert_eq!(scan.stats.blobs_excluded, 2);
    assert_eq!(
        scan.stats.unreachable_blobs, 0,
        "excluded blobs are not unreachable"
    );
    let skips = scan.diags_of(keytrail_input::kinds::EXCLUDED);
    assert_eq!(skips.len(), 2, "{skips:?}");
    assert!(skips.iter().all(|d| !d.is_error));
    assert!(
        skips
            .iter()
            .any(|d| d.message.contains("vendor/lib/creds.env")),
        "{skips:?}"
    );
    // Without excludes the same repository yields every blob.
    let all = Scan::full(&r.dir);
    assert!(all.has(&vendored) && all.has(&fixture));
    assert_eq!(all.stats.blobs_excluded, 0);

    // Gates honour excludes too.
    let gate = Scan::run(
        &r.dir,
        &GitOptions {
            range: Some("HEAD".into()),
            ..opts.clone()
        },
    );
    assert!(gate.has(&shared) && gate.has(&kept));
    assert!(!gate.has(&vendored) && !gate.has(&fixture));

    // And the index.
    r.write("vendor/new.env", &format!("N={}\n", fake_secret("staged")));
    r.write("src/new.env", "N=1\n");
    r.git(&["add", "-A"]);
    let staged = Scan::run(
        &r.dir,
        &GitOptions {
            staged: true,
            ..opts.clone()
        },
    );
    let staged_paths: Vec<_> = staged.blobs.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(staged_paths, vec!["src/new.env"]);

    // And the work-tree paths handed to the file source.
    r.write("vendor/untracked.env", "U=1\n");
    r.write("notes/untracked.env", "U=2\n");
    let full = Scan::run(&r.dir, &opts);
    let wt: Vec<_> = full
        .stats
        .worktree_paths
        .iter()
        .map(|p| {
            p.strip_prefix(&r.dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(wt.contains(&"notes/untracked.env".to_string()), "{wt:?}");
    assert!(wt.iter().all(|p| !p.starts_with("vendor/")), "{wt:?}");
}

#[test]
fn commit_messages_are_scanned_once_per_commit() {
    let r = Repo::new();
    let in_message = fake_secret("message");
    let in_amended = fake_secret("amended-message");
    r.write("a.txt", "a\n");
    let c1 = r.commit(&format!("deploy\n\nused token {in_message} to test\n"));
    r.write("b.txt", "b\n");
    r.commit(&format!("oops {in_amended}"));
    let amended_away = r.rev("HEAD");
    r.git(&["commit", "-q", "--amend", "-m", "fixed message"]);
    r.git(&["checkout", "-q", "-b", "side"]);
    r.write("c.txt", "c\n");
    let side = r.commit("side work");
    r.git(&["checkout", "-q", "main"]);

    let scan = Scan::full(&r.dir);
    // Four commit objects: c1, the amended-away one, its replacement, side.
    assert_eq!(scan.stats.commits, 4);
    assert_eq!(scan.stats.messages_delivered, 4);
    assert_eq!(scan.messages.len(), 4);
    let ids: BTreeSet<_> = scan.messages.iter().map(|(o, _)| o.blob.clone()).collect();
    assert_eq!(ids.len(), 4, "each commit's message once");
    assert!(!scan.has(&in_message), "messages are not blobs");

    let hit = |needle: &str| {
        let hits: Vec<_> = scan
            .messages
            .iter()
            .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .collect();
        assert_eq!(hits.len(), 1, "one message contains {needle}");
        hits[0]
    };
    let (o, body) = hit(&in_message);
    assert_eq!(o.commit.as_deref(), Some(c1.as_str()));
    assert_eq!(o.blob, c1, "a message's object is its commit");
    assert_eq!(o.author.as_deref(), Some("Dev <dev@example.com>"));
    assert_eq!(o.summary.as_deref(), Some("deploy"));
    assert!(o.author_date.as_deref().unwrap().ends_with("+01:00"));
    assert_eq!(o.state, GitBlobState::Committed);
    assert!(!o.in_head);
    assert!(o.introductions.is_empty());
    assert!(
        body.starts_with(b"deploy\n\nused token"),
        "the full message"
    );

    let (o, _) = hit(&in_amended);
    assert_eq!(o.commit.as_deref(), Some(amended_away.as_str()));
    assert_eq!(o.state, GitBlobState::Dangling);

    // A gate scans only its commits' messages.
    let gate = Scan::run(
        &r.dir,
        &GitOptions {
            range: Some(format!("main..{side}")),
            ..GitOptions::default()
        },
    );
    let msgs: Vec<_> = gate.messages.iter().map(|(o, _)| o.blob.clone()).collect();
    assert_eq!(msgs, vec![side.clone()]);

    // And they can be turned off.
    let off = Scan::run(
        &r.dir,
        &GitOptions {
            messages: false,
            ..GitOptions::default()
        },
    );
    assert!(off.messages.is_empty());
    assert_eq!(off.stats.messages_delivered, 0);
}

#[cfg(feature = "git-https")]
#[test]
fn http_url_is_cloned_over_smart_http_and_scanned() {
    let r = Repo::new();
    let on_main = fake_secret("http-main");
    let on_branch = fake_secret("http-side");
    r.write("a.env", &format!("A={on_main}\n"));
    r.commit("main");
    r.git(&["checkout", "-q", "-b", "side"]);
    r.write("b.env", &format!("B={on_branch}\n"));
    r.commit("side");
    r.git(&["checkout", "-q", "main"]);
    let served = r.home.join("served");
    std::fs::create_dir_all(&served).unwrap();
    r.git(&[
        "clone",
        "-q",
        "--bare",
        r.dir.to_str().unwrap(),
        served.join("repo.git").to_str().unwrap(),
    ]);

    let server = git_http::GitHttpServer::start(&served);
    let url = format!("{}/repo.git", server.base);
    let cloned = git::clone_url(&url, &r.home.join("clone")).expect("http clone succeeds");
    let scan = Scan::full(&cloned);
    assert!(scan.has(&on_main));
    assert!(scan.has(&on_branch), "non-default branches are fetched");
    assert_eq!(scan.stats.errors, 0, "{:?}", scan.diags);
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /repo.git/info/refs?service=git-upload-pack")),
        "smart HTTP discovery: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /repo.git/git-upload-pack")),
        "smart HTTP fetch: {requests:?}"
    );

    // TLS to a server that speaks plain HTTP: the rustls client (ring
    // provider) runs its handshake and fails cleanly, naming the URL.
    let tls = format!("{}/repo.git", server.base.replace("http://", "https://"));
    let err = git::clone_url(&tls, &r.home.join("tls")).unwrap_err();
    assert_eq!(err.kind, kinds::GIT_CLONE);
    assert!(err.message.contains(&tls), "{}", err.message);

    // A repository the server does not have.
    let missing = format!("{}/nope.git", server.base);
    let err = git::clone_url(&missing, &r.home.join("nope")).unwrap_err();
    assert_eq!(err.kind, kinds::GIT_CLONE);
    assert!(err.message.contains(&missing), "{}", err.message);
}

#[cfg(feature = "git-https")]
#[test]
fn unreachable_url_error_names_the_url() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/repo.git"),
        format!("https://user:hunter2@127.0.0.1:{port}/repo.git"),
    ] {
        let err = git::clone_url(&url, &tmp.path().join(format!("c{}", url.len()))).unwrap_err();
        assert_eq!(err.kind, kinds::GIT_CLONE);
        assert!(err.is_error);
        let shown = url.replace("user:hunter2", "***");
        assert_eq!(err.subject, shown);
        assert!(err.message.contains(&shown), "{}", err.message);
        assert!(!err.message.contains("hunter2"), "credentials masked");
    }
}
