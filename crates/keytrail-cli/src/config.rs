//! Configuration of `scan` and `baseline create`: the `keytrail.toml` (or
//! `.keytrail.toml`) file found from the scanned root upwards or named by
//! `--config`, the `.keytrailignore` file users commit, and the rule flags
//! (`--disable-rule`, `--enable-rule`), merged into one [`Settings`].
//!
//! A bad file is a usage error (exit 2) naming the file, line and column:
//! silently ignoring a setting could silently hide or surface secrets.
//! Allow-listed secret values are stored as SHA-256 hashes, never as values.

use crate::args::InputArgs;
use anyhow::bail;
use keytrail_rules::Rule;
use keytrail_types::{Confidence, Finding, Severity};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Config file names looked for in each directory, in this order.
pub const CONFIG_NAMES: [&str; 2] = ["keytrail.toml", ".keytrail.toml"];
/// The ignore file's name.
pub const IGNORE_NAME: &str = ".keytrailignore";

/// `keytrail.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigSyntax {
    #[serde(default)]
    rules: RulesSyntax,
    #[serde(default)]
    scan: ScanSyntax,
    #[serde(default)]
    allow: AllowSyntax,
    #[serde(default)]
    limits: LimitsSyntax,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesSyntax {
    #[serde(default)]
    disable: Vec<Spanned<String>>,
    #[serde(default)]
    enable: Vec<Spanned<String>>,
    #[serde(default)]
    dirs: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanSyntax {
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    #[serde(default)]
    min_confidence: Option<Confidence>,
    #[serde(default)]
    min_severity: Option<Severity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowSyntax {
    #[serde(default)]
    fingerprints: Vec<Spanned<String>>,
    #[serde(default)]
    secrets_sha256: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSyntax {
    #[serde(default)]
    max_archive_depth: Option<usize>,
    #[serde(default)]
    max_archive_bytes: Option<u64>,
    #[serde(default)]
    git_max_blob_bytes: Option<u64>,
    #[serde(default)]
    image_max_layer_bytes: Option<u64>,
}

/// Per-source limits from the config (`None`: the built-in default or flag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Archive nesting (`--max-archive-depth` wins when given).
    pub max_archive_depth: Option<usize>,
    /// Decompressed bytes read out of one top-level archive.
    pub max_archive_bytes: Option<u64>,
    /// Largest git blob scanned.
    pub git_max_blob_bytes: Option<u64>,
    /// Largest image layer read.
    pub image_max_layer_bytes: Option<u64>,
}

/// A rule selector and where it was written, for errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// A rule id, or a prefix ending in `*` (`generic.*`).
    pub pattern: String,
    /// `file:line:col` or the flag that gave it.
    pub origin: String,
}

impl Selector {
    fn matches(&self, id: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => self.pattern == id,
        }
    }
}

/// Everything the config files and rule flags decide, merged.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The files read (config, ignore file), for `-v`.
    pub files: Vec<PathBuf>,
    /// Rules not to run (config `rules.disable`, ignore file `rule:`,
    /// `--disable-rule`), minus those `--enable-rule` names.
    pub disable: Vec<Selector>,
    /// Rules to run whatever their confidence (`rules.enable`, `--enable-rule`).
    pub enable: Vec<Selector>,
    /// Extra rule directories (config `rules.dirs`, relative to the file).
    pub rule_dirs: Vec<PathBuf>,
    /// Path globs not to scan (config `scan.exclude`, ignore-file globs).
    pub excludes: Vec<String>,
    /// `scan.min_confidence`, when set.
    pub min_confidence: Option<Confidence>,
    /// `scan.min_severity`, when set: findings below it are not reported.
    pub min_severity: Option<Severity>,
    /// Allow-listed finding fingerprints (32 hex, lowercase).
    pub allow_fingerprints: HashSet<String>,
    /// Allow-listed secret values, as lowercase hex SHA-256 of the value.
    pub allow_sha256: HashSet<String>,
    /// Per-source limits.
    pub limits: Limits,
}

/// 1-based line and column of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

fn at(path: &Path, text: &str, offset: usize) -> String {
    let (line, col) = position(text, offset);
    format!("{}:{line}:{col}", path.display())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Hex SHA-256 of a secret value, as written in `allow.secrets_sha256`
/// (`printf %s VALUE | sha256sum`).
pub fn value_sha256(value: &[u8]) -> String {
    let d = Sha256::digest(value);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Check a glob the way the walker compiles it.
fn check_glob(pattern: &str) -> Result<(), String> {
    let trimmed = pattern
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/');
    globset::Glob::new(trimmed)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl Settings {
    /// Read the config file at `path` into these settings.
    fn read_config(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config `{}`: {e}", path.display()))?;
        let syntax: ConfigSyntax = match toml::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                let place = match e.span() {
                    Some(span) => at(path, &text, span.start),
                    None => path.display().to_string(),
                };
                bail!("{place}: invalid config: {}", e.message());
            }
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let sel = |s: &Spanned<String>| Selector {
            pattern: s.get_ref().trim().to_string(),
            origin: at(path, &text, s.span().start),
        };
        self.disable.extend(syntax.rules.disable.iter().map(sel));
        self.enable.extend(syntax.rules.enable.iter().map(sel));
        for d in &syntax.rules.dirs {
            let dir = base.join(d.get_ref());
            if !dir.exists() {
                bail!(
                    "{}: rules directory `{}` does not exist",
                    at(path, &text, d.span().start),
                    dir.display()
                );
            }
            self.rule_dirs.push(dir);
        }
        for g in &syntax.scan.exclude {
            if let Err(e) = check_glob(g.get_ref()) {
                bail!(
                    "{}: invalid exclude glob `{}`: {e}",
                    at(path, &text, g.span().start),
                    g.get_ref()
                );
            }
            self.excludes.push(g.get_ref().clone());
        }
        if syntax.scan.min_confidence.is_some() {
            self.min_confidence = syntax.scan.min_confidence;
        }
        if syntax.scan.min_severity.is_some() {
            self.min_severity = syntax.scan.min_severity;
        }
        for f in &syntax.allow.fingerprints {
            let v = f.get_ref().trim().to_ascii_lowercase();
            if !is_hex(&v, 32) {
                bail!(
                    "{}: `{}` is not a fingerprint (32 hex characters, as in `keytrail scan --format json`)",
                    at(path, &text, f.span().start),
                    f.get_ref()
                );
            }
            self.allow_fingerprints.insert(v);
        }
        for h in &syntax.allow.secrets_sha256 {
            let v = h.get_ref().trim().to_ascii_lowercase();
            if !is_hex(&v, 64) {
                bail!(
                    "{}: `{}` is not a SHA-256 (64 hex characters: `printf %s VALUE | sha256sum`)",
                    at(path, &text, h.span().start),
                    h.get_ref()
                );
            }
            self.allow_sha256.insert(v);
        }
        let l = syntax.limits;
        self.limits = Limits {
            max_archive_depth: l.max_archive_depth.or(self.limits.max_archive_depth),
            max_archive_bytes: l.max_archive_bytes.or(self.limits.max_archive_bytes),
            git_max_blob_bytes: l.git_max_blob_bytes.or(self.limits.git_max_blob_bytes),
            image_max_layer_bytes: l
                .image_max_layer_bytes
                .or(self.limits.image_max_layer_bytes),
        };
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// Read a `.keytrailignore`: one entry per line; `#` starts a comment
    /// line. A 32-hex fingerprint allows that finding, `sha256:HEX` a
    /// secret value, `rule:ID` disables a rule, anything else is a path
    /// glob not to scan.
    fn read_ignore(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let place = format!("{}:{}", path.display(), i + 1);
            if let Some(hash) = line.strip_prefix("sha256:") {
                let v = hash.trim().to_ascii_lowercase();
                if !is_hex(&v, 64) {
                    bail!("{place}: `{line}` is not sha256: and 64 hex characters");
                }
                self.allow_sha256.insert(v);
            } else if let Some(id) = line.strip_prefix("rule:") {
                self.disable.push(Selector {
                    pattern: id.trim().to_string(),
                    origin: place,
                });
            } else if is_hex(line, 32) {
                self.allow_fingerprints.insert(line.to_ascii_lowercase());
            } else {
                if let Err(e) = check_glob(line) {
                    bail!("{place}: invalid path glob `{line}`: {e}");
                }
                self.excludes.push(line.to_string());
            }
        }
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// Whether a rule runs: an `enable` selecting it wins (over `disable`
    /// and the confidence threshold), then a `disable`, then the threshold.
    pub fn selects(&self, rule: &Rule, min_confidence: Confidence) -> bool {
        let id = rule.id();
        if self.enable.iter().any(|s| s.matches(id)) {
            return true;
        }
        if self.disable.iter().any(|s| s.matches(id)) {
            return false;
        }
        rule.syntax.confidence >= min_confidence
    }

    /// Every selector must name at least one rule: a typo would silently
    /// keep a noisy rule on or a wanted one off.
    pub fn check_selectors(&self, rules: &[Rule]) -> anyhow::Result<()> {
        for s in self.disable.iter().chain(&self.enable) {
            if !rules.iter().any(|r| s.matches(r.id())) {
                bail!(
                    "{}: no rule matches `{}` (`keytrail rules list` shows the ids)",
                    s.origin,
                    s.pattern
                );
            }
        }
        Ok(())
    }

    /// Whether a finding is allow-listed (by fingerprint or value hash).
    pub fn allows(&self, f: &Finding) -> bool {
        if self.allow_fingerprints.contains(&f.fingerprint.0) {
            return true;
        }
        !self.allow_sha256.is_empty()
            && self
                .allow_sha256
                .contains(&value_sha256(f.secret.expose().as_bytes()))
    }

    /// One line naming the files read and what they change, or `None`
    /// when no file was read.
    pub fn describe(&self) -> Option<String> {
        if self.files.is_empty() {
            return None;
        }
        let files: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        let mut what = Vec::new();
        let mut count = |n: usize, one: &str, many: &str| {
            if n > 0 {
                what.push(format!("{n} {}", if n == 1 { one } else { many }));
            }
        };
        count(
            self.disable.len(),
            "rule selector disabled",
            "rule selectors disabled",
        );
        count(
            self.enable.len(),
            "rule selector enabled",
            "rule selectors enabled",
        );
        count(self.rule_dirs.len(), "rule directory", "rule directories");
        count(self.excludes.len(), "path excluded", "paths excluded");
        count(
            self.allow_fingerprints.len() + self.allow_sha256.len(),
            "finding allow-listed",
            "findings allow-listed",
        );
        let what = if what.is_empty() {
            String::new()
        } else {
            format!(" ({})", what.join(", "))
        };
        Some(format!("using {}{what}", files.join(" and ")))
    }

    /// Whether a finding is at or above the severity threshold.
    pub fn severe_enough(&self, f: &Finding) -> bool {
        self.min_severity.is_none_or(|min| f.severity >= min)
    }
}

/// The directory config discovery starts from: the first PATH (its
/// directory if a file), else the current directory.
fn start_dir(input: &InputArgs) -> PathBuf {
    let first = input
        .paths
        .iter()
        .find(|p| p.as_os_str() != "-")
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    let abs = std::fs::canonicalize(&first).unwrap_or(first);
    if abs.is_dir() {
        abs
    } else {
        abs.parent().map(Path::to_path_buf).unwrap_or(abs)
    }
}

/// The first of `names` found in `start` or one of its ancestors.
pub fn find_upwards(start: &Path, names: &[&str]) -> Option<PathBuf> {
    for dir in start.ancestors() {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Load the settings for a run: the config file (`--config FILE`, else
/// the first `keytrail.toml`/`.keytrail.toml` from the scanned root
/// upwards; none with `--no-config`), the first `.keytrailignore` from the
/// scanned root upwards (none with `--no-config`), then the flags.
pub fn load(input: &InputArgs) -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    if !input.no_config {
        let start = start_dir(input);
        let config = match &input.config {
            Some(p) => {
                if !p.is_file() {
                    bail!("config file `{}` does not exist", p.display());
                }
                Some(p.clone())
            }
            None => find_upwards(&start, &CONFIG_NAMES),
        };
        if let Some(c) = config {
            s.read_config(&c)?;
        }
        if let Some(i) = find_upwards(&start, &[IGNORE_NAME]) {
            s.read_ignore(&i)?;
        }
    }
    let flag = |pattern: &String, name: &str| Selector {
        pattern: pattern.trim().to_string(),
        origin: format!("--{name} {pattern}"),
    };
    s.disable
        .extend(input.disable_rule.iter().map(|p| flag(p, "disable-rule")));
    s.enable
        .extend(input.enable_rule.iter().map(|p| flag(p, "enable-rule")));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keytrail.toml");
        std::fs::write(&p, text).unwrap();
        let mut s = Settings::default();
        s.read_config(&p).map(|_| s).map_err(|e| {
            anyhow::anyhow!(
                e.to_string()
                    .replace(&dir.path().display().to_string(), "D")
            )
        })
    }

    #[test]
    fn full_config_parses() {
        let s = parse(
            r#"
[rules]
disable = ["generic.*", "aws.access_key_id"]
enable = ["generic.password.env"]

[scan]
exclude = ["vendor/**", "*.min.js"]
min_confidence = "low"
min_severity = "high"

[allow]
fingerprints = ["00112233445566778899AABBCCDDEEFF"]
secrets_sha256 = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]

[limits]
max_archive_depth = 1
git_max_blob_bytes = 1048576
"#,
        )
        .unwrap();
        assert_eq!(s.disable.len(), 2);
        assert!(
            s.disable[1].origin.ends_with("/keytrail.toml:3:25"),
            "{}",
            s.disable[1].origin
        );
        assert_eq!(s.excludes, ["vendor/**", "*.min.js"]);
        assert_eq!(s.min_confidence, Some(Confidence::Low));
        assert_eq!(s.min_severity, Some(Severity::High));
        assert!(
            s.allow_fingerprints
                .contains("00112233445566778899aabbccddeeff")
        );
        assert!(s.allow_sha256.contains(&value_sha256(b"test")));
        assert_eq!(s.limits.max_archive_depth, Some(1));
        assert_eq!(s.limits.git_max_blob_bytes, Some(1 << 20));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let cases = [
            (
                "[scan]\nexclude = [\"a\", \"[\"]\n",
                "D/keytrail.toml:2:17: invalid exclude glob `[`",
            ),
            (
                "[scan]\nmin_severity = \"huge\"\n",
                "D/keytrail.toml:2:16: invalid config",
            ),
            (
                "[rules]\nexclude = []\n",
                "D/keytrail.toml:2:1: invalid config: unknown field `exclude`",
            ),
            (
                "[allow]\nfingerprints = [\n  \"abc\",\n]\n",
                "D/keytrail.toml:3:3: `abc` is not a fingerprint",
            ),
            (
                "[allow]\nsecrets_sha256 = [\"zz\"]\n",
                "D/keytrail.toml:2:19: `zz` is not a SHA-256",
            ),
            ("scan = 3\n[x\n", "D/keytrail.toml:2:"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn ignore_file_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(IGNORE_NAME);
        std::fs::write(
            &p,
            "# fixtures\ntests/fixtures/**\n00112233445566778899aabbccddeeff\nsha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\nrule:generic.password.*\n",
        )
        .unwrap();
        let mut s = Settings::default();
        s.read_ignore(&p).unwrap();
        assert_eq!(s.excludes, ["tests/fixtures/**"]);
        assert!(
            s.allow_fingerprints
                .contains("00112233445566778899aabbccddeeff")
        );
        assert!(s.allow_sha256.contains(&value_sha256(b"test")));
        assert_eq!(s.disable[0].pattern, "generic.password.*");
        assert!(s.disable[0].origin.ends_with(".keytrailignore:5"));

        std::fs::write(&p, "ok/**\nsha256:abc\n").unwrap();
        let err = Settings::default().read_ignore(&p).unwrap_err().to_string();
        assert!(err.contains(".keytrailignore:2: `sha256:abc`"), "{err}");
    }

    #[test]
    fn selectors_match_ids_and_prefixes() {
        let s = Selector {
            pattern: "generic.*".into(),
            origin: String::new(),
        };
        assert!(s.matches("generic.password") && !s.matches("github.pat"));
        let exact = Selector {
            pattern: "aws.access_key_id".into(),
            origin: String::new(),
        };
        assert!(exact.matches("aws.access_key_id") && !exact.matches("aws.access_key_idx"));
    }

    #[test]
    fn discovery_walks_upwards_and_prefers_keytrail_toml() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(dir.path().join(".keytrail.toml"), "").unwrap();
        assert_eq!(
            find_upwards(&deep, &CONFIG_NAMES),
            Some(dir.path().join(".keytrail.toml"))
        );
        std::fs::write(dir.path().join("a/keytrail.toml"), "").unwrap();
        std::fs::write(dir.path().join("a/.keytrail.toml"), "").unwrap();
        assert_eq!(
            find_upwards(&deep, &CONFIG_NAMES),
            Some(dir.path().join("a/keytrail.toml"))
        );
    }
}
