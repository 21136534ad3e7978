//! The human encoder: findings grouped by secret, each with its locations
//! and masked snippets; plus the one-line run summary the CLI prints on
//! stderr. Colour is an option; with it off, no escape code is written.

use crate::{Report, ReportOptions, Summary};
use keytrail_types::{
    Finding, GitBlobState, Location, Origin, Remediation, RemediationStep, Severity,
};
use std::io::{self, Write};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BLUE: &str = "\x1b[34m";
const MAGENTA: &str = "\x1b[35m";
const CYAN: &str = "\x1b[36m";

/// Wraps text in an ANSI style when colour is on.
struct Paint {
    on: bool,
}

impl Paint {
    fn s(&self, style: &str, text: &str) -> String {
        if self.on {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
}

fn severity_style(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => RED,
        Severity::Medium => YELLOW,
        Severity::Low | Severity::Info => BLUE,
    }
}

pub(crate) fn write(
    w: &mut dyn Write,
    report: &Report<'_>,
    opts: &ReportOptions,
) -> io::Result<()> {
    let p = Paint { on: opts.color };
    // Group by rule, in order of each rule's first finding (the findings
    // arrive in the aggregator's deterministic order).
    let mut groups: Vec<(&str, Vec<&Finding>)> = Vec::new();
    for f in report.findings {
        match groups.iter_mut().find(|(id, _)| *id == f.rule_id) {
            Some((_, fs)) => fs.push(f),
            None => groups.push((&f.rule_id, vec![f])),
        }
    }
    for (gi, (rule_id, findings)) in groups.iter().enumerate() {
        if gi > 0 {
            writeln!(w)?;
        }
        write_group_header(w, &p, report, rule_id, findings)?;
        let mut prev_steps = None;
        for f in findings {
            writeln!(w)?;
            write_finding(w, &p, f, opts, prev_steps)?;
            if let Some(r) = &f.remediation {
                prev_steps = Some(&r.steps);
            }
        }
    }
    Ok(())
}

/// The rule once per group: name, id and provider, how many findings and
/// locations, and what to do about any of them (printed once, not per
/// finding).
fn write_group_header(
    w: &mut dyn Write,
    p: &Paint,
    report: &Report<'_>,
    rule_id: &str,
    findings: &[&Finding],
) -> io::Result<()> {
    let meta = report.rule(rule_id);
    let provider = meta.map(|r| r.provider.as_str()).filter(|p| !p.is_empty());
    let name = findings
        .first()
        .map(|f| f.rule_name.as_str())
        .unwrap_or(rule_id);
    write!(w, "{} ", p.s(BOLD, name))?;
    match provider {
        Some(prov) => write!(w, "{}", p.s(DIM, &format!("[{rule_id} · {prov}]")))?,
        None => write!(w, "{}", p.s(DIM, &format!("[{rule_id}]")))?,
    }
    let locations: u64 = findings.iter().map(|f| f.locations.len() as u64).sum();
    writeln!(
        w,
        ": {}, {}",
        plural(findings.len() as u64, "finding", "findings"),
        plural(locations, "location", "locations")
    )?;
    if let Some(fix) = meta.map(|m| m.remediation.trim()).filter(|r| !r.is_empty()) {
        writeln!(w, "  what to do: {fix}")?;
    }
    Ok(())
}

fn write_finding(
    w: &mut dyn Write,
    p: &Paint,
    f: &Finding,
    opts: &ReportOptions,
    prev_steps: Option<&Vec<RemediationStep>>,
) -> io::Result<()> {
    writeln!(
        w,
        "  severity: {}  confidence: {}  fingerprint: {}",
        p.s(severity_style(f.severity), f.severity.as_str()),
        f.confidence.as_str(),
        f.fingerprint
    )?;
    if opts.reveal {
        writeln!(w, "  secret: {}", p.s(RED, f.secret.expose()))?;
    } else {
        writeln!(w, "  secret: {}", f.secret_redacted)?;
    }
    for (k, v) in &f.context {
        writeln!(w, "  {k}: {v}")?;
    }
    for n in &f.notes {
        writeln!(w, "  note: {n}")?;
    }
    if let Some(v) = &f.verification {
        let style = match v.status {
            keytrail_types::VerificationStatus::Live => RED,
            _ => DIM,
        };
        write!(w, "  verification: {}", p.s(style, v.status.as_str()))?;
        if !v.identity.is_empty() {
            let ids: Vec<String> = v.identity.iter().map(|(k, x)| format!("{k}={x}")).collect();
            write!(w, " as {}", ids.join(", "))?;
        }
        if let Some(d) = &v.detail {
            write!(w, " ({d})")?;
        }
        writeln!(w, " [{}]", v.checked_at)?;
    }
    if let Some(b) = &f.blast_radius {
        writeln!(w, "  blast radius: {}", p.s(RED, b.privilege.as_str()))?;
        if !b.scopes.is_empty() {
            writeln!(w, "    scopes: {}", b.scopes.join(", "))?;
        }
        if !b.resources.is_empty() {
            writeln!(w, "    reaches: {}", b.resources.join(", "))?;
        }
        for e in &b.evidence {
            writeln!(w, "    because: {e}")?;
        }
        for u in &b.unknowns {
            writeln!(w, "    not determined: {u}")?;
        }
    }
    let n = f.locations.len();
    writeln!(w, "  {} location{}:", n, if n == 1 { "" } else { "s" })?;
    let shown = opts.max_locations.unwrap_or(n).min(n);
    // Places in the current code (files, blobs still in HEAD) first: with
    // a cap, those are the ones to see.
    let mut ordered: Vec<&Location> = f.locations.iter().collect();
    ordered.sort_by_key(|l| !crate::sarif::is_current(l));
    for loc in &ordered[..shown] {
        write_location(w, p, loc)?;
    }
    if shown < n {
        writeln!(
            w,
            "    {}",
            p.s(
                DIM,
                &format!(
                    "… and {} more {} (every location: --max-locations 0, or --format json)",
                    n - shown,
                    if n - shown == 1 {
                        "location"
                    } else {
                        "locations"
                    }
                )
            )
        )?;
    }
    if let Some(r) = &f.remediation {
        let same = prev_steps.is_some_and(|prev| *prev == r.steps);
        write_remediation(w, p, r, same)?;
    }
    Ok(())
}

/// The remediation block: numbered steps with their detail, then every
/// affected image with the layers and config entries holding the secret.
/// Steps equal to the previous finding's of the same rule (`same`) are
/// not printed again.
fn write_remediation(w: &mut dyn Write, p: &Paint, r: &Remediation, same: bool) -> io::Result<()> {
    if same {
        writeln!(
            w,
            "  {} the same steps as the finding above",
            p.s(BOLD, "remediation:")
        )?;
    } else {
        writeln!(w, "  {}", p.s(BOLD, "remediation:"))?;
    }
    for (i, step) in r.steps.iter().enumerate().filter(|_| !same) {
        writeln!(
            w,
            "    {}. {} {}",
            i + 1,
            step.summary,
            p.s(DIM, &format!("[{}]", step.action))
        )?;
        if !step.detail.is_empty() {
            writeln!(w, "       {}", p.s(DIM, &step.detail))?;
        }
    }
    if r.affected.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "  {} ({}, {}):",
        p.s(BOLD, "affected images"),
        plural(r.references.len() as u64, "reference", "references"),
        plural(r.digests.len() as u64, "digest", "digests"),
    )?;
    for a in &r.affected {
        let mut head = a.image.clone();
        if let Some(d) = &a.manifest_digest {
            head.push_str(&format!(" @ {d}"));
        }
        if let Some(pl) = &a.platform {
            head.push_str(&format!(" [{pl}]"));
        }
        if !a.visible_in_final {
            head.push_str(" (not in the final filesystem, still shipped)");
        }
        writeln!(w, "    {}", p.s(MAGENTA, &head))?;
        for c in &a.config {
            match &c.instruction {
                Some(i) => writeln!(w, "      config {} ({i})", c.key)?,
                None => writeln!(w, "      config {}", c.key)?,
            }
        }
        for l in &a.layers {
            let mut what = vec![];
            if let Some(d) = &l.digest {
                what.push(d.clone());
            }
            if let Some(i) = &l.instruction {
                what.push(i.clone());
            }
            if !l.visible_in_final {
                what.push("deleted in a later layer".into());
            }
            let what = if what.is_empty() {
                String::new()
            } else {
                format!(" ({})", what.join(", "))
            };
            writeln!(w, "      layer {}{what}: {}", l.index, l.paths.join(", "))?;
        }
    }
    Ok(())
}

fn write_location(w: &mut dyn Write, p: &Paint, loc: &Location) -> io::Result<()> {
    writeln!(
        w,
        "    {}",
        p.s(
            MAGENTA,
            &format!("{}:{}:{}", loc.path, loc.line, loc.column)
        )
    )?;
    match &loc.origin {
        Origin::File | Origin::Stdin | Origin::Log => {}
        Origin::Git(g) => {
            let mut parts = Vec::new();
            if let Some(c) = &g.commit {
                parts.push(format!("commit {c}"));
            }
            parts.push(format!("blob {}", g.blob));
            if let Some(a) = &g.author {
                parts.push(a.clone());
            }
            if let Some(d) = &g.author_date {
                parts.push(d.clone());
            }
            match g.state {
                GitBlobState::Committed => {}
                GitBlobState::Dangling => parts.push("only in commits no ref reaches".into()),
                GitBlobState::Unreachable => parts.push("in no commit".into()),
                GitBlobState::Staged => parts.push("staged, not committed".into()),
            }
            if !g.in_head {
                parts.push("not in HEAD".into());
            }
            if g.introductions.len() > 1 {
                parts.push(format!("introduced by {} commits", g.introductions.len()));
            }
            writeln!(w, "      {}", p.s(DIM, &parts.join(", ")))?;
        }
        Origin::Image(im) => {
            let mut parts = vec![format!("image {}", im.image)];
            match (im.layer, &im.layer_digest) {
                (Some(l), Some(d)) => parts.push(format!("layer {l} ({d})")),
                (Some(l), None) => parts.push(format!("layer {l}")),
                _ => parts.push("image config".into()),
            }
            if !im.visible_in_final {
                parts.push("deleted in a later layer".into());
            }
            writeln!(w, "      {}", p.s(DIM, &parts.join(", ")))?;
        }
        Origin::Export(ex) => {
            let mut parts = vec![ex.export.replace('_', " ")];
            parts.extend(
                [&ex.container, &ex.item, &ex.author, &ex.time]
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            writeln!(w, "      {}", p.s(DIM, &parts.join(", ")))?;
        }
    }
    for line in loc.snippet.lines() {
        writeln!(w, "      {}", p.s(CYAN, line))?;
    }
    Ok(())
}

/// Human-readable byte count (`1.5 MiB`).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line run summary the CLI prints on stderr, e.g.
/// `scanned 12 files (3.4 KiB) in 0.05s: 2 findings (3 locations), 1 suppressed by baseline, 4 skipped, 0 unreadable`.
pub fn summary_line(s: &Summary) -> String {
    let mut out = format!(
        "scanned {} ({}) in {:.2}s: {} ({})",
        plural(s.files_scanned, "file", "files"),
        bytes(s.bytes_scanned),
        s.elapsed_ms as f64 / 1000.0,
        plural(s.findings, "finding", "findings"),
        plural(s.locations, "location", "locations"),
    );
    if s.suppressed_by_baseline > 0 {
        out.push_str(&format!(
            ", {} suppressed by baseline",
            s.suppressed_by_baseline
        ));
    }
    if s.allowed > 0 {
        out.push_str(&format!(", {} allowed by config", s.allowed));
    }
    out.push_str(&format!(
        ", {} skipped, {} unreadable",
        s.skipped, s.unreadable
    ));
    if s.incomplete > 0 {
        out.push_str(&format!(
            ", {} only partly scanned (archive limits)",
            plural(s.incomplete, "archive", "archives")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use crate::{Format, write_report};

    fn render(color: bool, reveal: bool) -> String {
        let (findings, rules, summary) = testdata::sample();
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let opts = ReportOptions {
            reveal,
            color,
            ..Default::default()
        };
        let mut out = Vec::new();
        write_report(&mut out, Format::Human, &report, &opts).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn groups_locations_under_finding() {
        let out = render(false, false);
        let gh = out.find("GitHub personal access token").unwrap();
        let first = out.find("config/app.env:3:14").unwrap();
        let second = out.find("src/my file#1.py:10:9").unwrap();
        let aws = out.find("AWS secret access key").unwrap();
        assert!(gh < first && first < second && second < aws, "{out}");
        assert!(out.contains("2 locations:"));
        assert!(out.contains("commit 0123abcd"));
        assert!(out.contains("image registry.example/app:1, layer 2 (sha256:abc)"));
        assert!(out.contains("      GITHUB_TOKEN=ghp_****"));
        assert!(out.contains("  id: AKIAQWERTYUIOPASDFGH"));
        assert!(out.contains("severity: critical  confidence: medium"));
    }

    #[test]
    fn image_remediation_block() {
        let out = render(false, false);
        let gh_end = out.find("AWS secret access key").unwrap();
        assert!(
            !out[..gh_end].contains("remediation:"),
            "only image findings: {out}"
        );
        let block = &out[out.find("  remediation:\n").expect("block")..];
        let want = [
            "    1. Revoke and rotate the credential first [rotate_credential]",
            "       A rebuilt image does not un-leak it.",
            "    2. Rebuild without baking the secret into the image (it leaked through COPY, ENV) [rebuild_without_secret]",
            "    4. Invalidate build caches [invalidate_build_cache]",
            "  affected images (1 reference, 1 digest):",
            "    registry.example/app:1 @ sha256:m1 [linux/amd64]",
            "      config Env[1] (ENV)",
            "      layer 2 (sha256:abc, COPY): /etc/aws/credentials",
        ];
        let mut at = 0;
        for line in want {
            let i = block[at..]
                .find(&format!("{line}\n"))
                .unwrap_or_else(|| panic!("missing or out of order: {line}\n{block}"));
            at += i + line.len();
        }
    }

    #[test]
    fn git_provenance_shown() {
        let (mut findings, rules, summary) = testdata::sample();
        if let Origin::Git(g) = &mut findings[0].locations[1].origin {
            g.state = GitBlobState::Dangling;
        }
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let mut out = Vec::new();
        write_report(&mut out, Format::Human, &report, &ReportOptions::default()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("commit 0123abcd, blob feedface, Dev <dev@example.com>, 2024-01-02T03:04:05Z, only in commits no ref reaches, not in HEAD"),
            "{out}"
        );
    }

    #[test]
    fn no_escape_codes_without_colour() {
        assert!(!render(false, false).contains('\x1b'));
        assert!(!render(false, true).contains('\x1b'));
        assert!(render(true, false).contains("\x1b[1mGitHub"));
    }

    #[test]
    fn reveal_shows_secret() {
        let secret = testdata::github_secret();
        assert!(!render(false, false).contains(&secret));
        assert!(!render(true, false).contains(&secret));
        assert!(render(false, true).contains(&format!("secret: {secret}")));
    }

    #[test]
    fn grouped_by_rule_with_counts_and_advice_once() {
        let (mut findings, rules, summary) = testdata::sample();
        // A second GitHub finding (another secret), after the AWS one.
        let mut gh2 = findings[0].clone();
        gh2.fingerprint.0 = "99999999999999999999999999999999".into();
        gh2.locations.truncate(1);
        gh2.locations[0].path = "other.env".into();
        findings.push(gh2);
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let mut out = Vec::new();
        write_report(&mut out, Format::Human, &report, &ReportOptions::default()).unwrap();
        let out = String::from_utf8(out).unwrap();
        let header = "GitHub personal access token (classic) [github.pat.classic · GitHub]: 2 findings, 3 locations\n  what to do: Revoke it at https://github.com/settings/tokens.\n";
        assert!(out.starts_with(header), "{out}");
        assert_eq!(out.matches("what to do: Revoke it at").count(), 1, "{out}");
        assert_eq!(out.matches("[github.pat.classic").count(), 1, "{out}");
        let second = out.find("fingerprint: 99999999").unwrap();
        let aws = out
            .find("AWS secret access key [aws.secret_access_key · AWS]: 1 finding, 1 location")
            .unwrap();
        assert!(second < aws, "grouped, not in finding order: {out}");
    }

    #[test]
    fn max_locations_caps_and_says_how_many_more() {
        let (mut findings, rules, summary) = testdata::sample();
        let extra = findings[0].locations[0].clone();
        for i in 0..6 {
            let mut l = extra.clone();
            l.path = format!("f{i}.env");
            findings[0].locations.push(l);
        }
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let render = |max: Option<usize>| {
            let mut out = Vec::new();
            let opts = ReportOptions {
                max_locations: max,
                ..Default::default()
            };
            write_report(&mut out, Format::Human, &report, &opts).unwrap();
            String::from_utf8(out).unwrap()
        };
        let capped = render(Some(3));
        assert!(capped.contains("  8 locations:\n"), "{capped}");
        // Current places first: the git location (not in HEAD) is past the cap.
        assert!(capped.contains("f1.env:3:14"), "{capped}");
        assert!(
            !capped.contains("f2.env") && !capped.contains("my file"),
            "{capped}"
        );
        assert!(
            capped.contains(
                "    … and 5 more locations (every location: --max-locations 0, or --format json)\n"
            ),
            "{capped}"
        );
        let all = render(None);
        assert!(
            all.contains("f5.env:3:14") && !all.contains("more locations"),
            "{all}"
        );
    }

    #[test]
    fn current_locations_are_shown_first() {
        let (mut findings, rules, summary) = testdata::sample();
        findings[0].locations.reverse();
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let mut out = Vec::new();
        let opts = ReportOptions {
            max_locations: Some(1),
            ..Default::default()
        };
        write_report(&mut out, Format::Human, &report, &opts).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("config/app.env:3:14"), "{out}");
        assert!(!out.contains("src/my file#1.py"), "{out}");
    }

    #[test]
    fn repeated_image_remediation_is_printed_once() {
        let (mut findings, rules, summary) = testdata::sample();
        let mut again = findings[1].clone();
        again.fingerprint.0 = "12121212121212121212121212121212".into();
        findings.push(again);
        let report = Report {
            findings: &findings,
            rules: &rules,
            summary: &summary,
        };
        let mut out = Vec::new();
        write_report(&mut out, Format::Human, &report, &ReportOptions::default()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out.matches("1. Revoke and rotate the credential first")
                .count(),
            1,
            "{out}"
        );
        assert!(
            out.contains("  remediation: the same steps as the finding above\n"),
            "{out}"
        );
        assert_eq!(
            out.matches("affected images (1 reference, 1 digest)")
                .count(),
            2
        );
    }

    #[test]
    fn summary_line_counts() {
        let s = Summary {
            files_scanned: 1,
            bytes_scanned: 2048,
            findings: 2,
            locations: 3,
            suppressed_by_baseline: 1,
            skipped: 4,
            elapsed_ms: 50,
            ..Default::default()
        };
        assert_eq!(
            summary_line(&s),
            "scanned 1 file (2.0 KiB) in 0.05s: 2 findings (3 locations), 1 suppressed by baseline, 4 skipped, 0 unreadable"
        );
        let cut = Summary { incomplete: 2, ..s };
        assert!(
            summary_line(&cut).ends_with(", 2 archives only partly scanned (archive limits)"),
            "{}",
            summary_line(&cut)
        );
    }
}
