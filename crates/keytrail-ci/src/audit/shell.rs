//! Reading the shell scripts of CI steps (`run:` in GitHub Actions,
//! `script:` in GitLab CI) for what they do with secrets: print them,
//! write them to files (including heredocs), or log in to a cloud with a
//! long-lived key.
//!
//! This is a line-level reading, not a shell parser: each line is split
//! into simple commands at `;`, `&&` and `||`, and a command is classified
//! by its first word, its pipes and its redirections. It errs towards
//! silence: a secret piped into another command (`echo "$T" | docker
//! login --password-stdin`, the recommended pattern) is not "echoed".

use super::yaml::Node;
use regex::Regex;
use std::sync::LazyLock;

/// One line of a script with its position in the YAML file.
#[derive(Debug, Clone)]
pub struct ScriptLine {
    /// The text of the line.
    pub text: String,
    /// 1-based line in the file.
    pub line: u64,
}

/// The lines of a script node: a scalar (`run: |`) or a sequence of
/// scalars (GitLab `script:`).
pub fn script_lines(node: &Node) -> Vec<ScriptLine> {
    let mut out = Vec::new();
    let items: Vec<&Node> = match node.as_seq() {
        Some(s) => s.iter().collect(),
        None => vec![node],
    };
    for item in items {
        let Some(text) = item.as_str() else { continue };
        for (i, l) in text.lines().enumerate() {
            out.push(ScriptLine {
                text: l.to_string(),
                line: if item.block {
                    item.text_line(i)
                } else {
                    item.line
                },
            });
        }
    }
    out
}

/// What a script does with a secret on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretUse {
    /// Printed to the job log (`echo`, `printf`, `cat <<EOF` without redirect).
    Echoed {
        /// The secret references involved.
        refs: Vec<String>,
        /// 1-based line.
        line: u64,
    },
    /// Written to a file.
    Written {
        /// The secret references involved.
        refs: Vec<String>,
        /// The file as written in the script.
        target: String,
        /// 1-based line.
        line: u64,
    },
}

static REDIRECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[^0-9&<>-])(?:[12])?>>?\s*("[^"]+"|'[^']+'|[^\s;|&<>]+)"#)
        .expect("redirect regex")
});
static TEE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\btee\s+(?:-a\s+|--append\s+)?("[^"]+"|'[^']+'|[^\s;|&<>]+)"#).expect("tee regex")
});
static HEREDOC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?"#).expect("heredoc"));

const PRINTERS: &[&str] = &[
    "echo",
    "printf",
    "print",
    "puts",
    "cat",
    "write-host",
    "write-output",
    "console.log",
];

/// Targets that are not files a secret should not reach: GitHub's
/// environment and output files (masked by the runner), the null device
/// and the standard streams.
fn harmless_target(t: &str) -> bool {
    let t = t.trim_matches(|c| c == '"' || c == '\'');
    let lower = t.to_ascii_lowercase();
    [
        "$github_env",
        "${github_env}",
        "$github_output",
        "${github_output}",
        "$github_path",
        "${github_path}",
        "$github_state",
        "${github_state}",
        "/dev/null",
        "/dev/stderr",
        "/dev/stdout",
        "&2",
        "&1",
    ]
    .contains(&lower.as_str())
        || lower.starts_with("${{ github.env")
        || lower.starts_with("$env:github_env")
        || lower.starts_with("$env:github_output")
}

fn split_commands(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b';' => {
                out.push(&line[start..i]);
                start = i + 1;
            }
            None if (c == b'&' || c == b'|') && i + 1 < b.len() && b[i + 1] == c => {
                out.push(&line[start..i]);
                start = i + 2;
                i += 1;
            }
            None => {}
        }
        i += 1;
    }
    out.push(&line[start..]);
    out
}

/// Position of an unquoted single `|` (a pipe) in `cmd`.
fn pipe_pos(cmd: &str) -> Option<usize> {
    let b = cmd.as_bytes();
    let mut quote: Option<u8> = None;
    for (i, &c) in b.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'|' => return Some(i),
            None => {}
        }
    }
    None
}

fn first_word(cmd: &str) -> String {
    let cmd = cmd.trim_start();
    let cmd = cmd.strip_prefix("- ").unwrap_or(cmd);
    let w = cmd
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    w.rsplit('/').next().unwrap_or(w).to_ascii_lowercase()
}

/// Classify each line of a script. `refs(text)` returns the secret
/// references in a piece of text (platform-specific).
pub fn secret_uses(lines: &[ScriptLine], refs: &dyn Fn(&str) -> Vec<String>) -> Vec<SecretUse> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        let text = l.text.as_str();
        if text.contains("::add-mask::") {
            i += 1;
            continue;
        }
        // A heredoc: its body is written to the redirect target, or
        // printed when there is none.
        if let Some(h) = HEREDOC.captures(text)
            && !text.contains("<<<")
        {
            let delim = h[1].to_string();
            let mut j = i + 1;
            let mut body: Vec<&ScriptLine> = Vec::new();
            while j < lines.len() && lines[j].text.trim() != delim {
                body.push(&lines[j]);
                j += 1;
            }
            let target = redirect_target(text);
            let printer = PRINTERS.contains(&first_word(text).as_str());
            for b in body {
                let r = refs(&b.text);
                if r.is_empty() {
                    continue;
                }
                match &target {
                    Some(t) if harmless_target(t) => {}
                    Some(t) => out.push(SecretUse::Written {
                        refs: r,
                        target: t.clone(),
                        line: b.line,
                    }),
                    None if printer && pipe_pos(text).is_none() => out.push(SecretUse::Echoed {
                        refs: r,
                        line: b.line,
                    }),
                    None => {}
                }
            }
            i = j + 1;
            continue;
        }
        for cmd in split_commands(text) {
            let r = refs(cmd);
            if r.is_empty() {
                continue;
            }
            if let Some(t) = redirect_target(cmd) {
                if !harmless_target(&t) {
                    out.push(SecretUse::Written {
                        refs: r,
                        target: t,
                        line: l.line,
                    });
                }
                continue;
            }
            let head = match pipe_pos(cmd) {
                Some(p) => &cmd[..p],
                None => cmd,
            };
            let word = first_word(head);
            if !PRINTERS.contains(&word.as_str()) || word == "cat" && !head.contains("<<<") {
                continue;
            }
            if pipe_pos(cmd).is_some() {
                // Piped into another command: not printed by this one.
                continue;
            }
            out.push(SecretUse::Echoed {
                refs: r,
                line: l.line,
            });
        }
        i += 1;
    }
    out
}

/// The file a command writes to with `>`, `>>` or `tee`, if any.
fn redirect_target(cmd: &str) -> Option<String> {
    // Ignore `>` inside quotes and `=>`/`->` arrows: take the unquoted text.
    let unquoted = strip_quoted(cmd);
    if let Some(c) = TEE.captures(&unquoted) {
        return Some(clean_target(&c[1]));
    }
    let c = REDIRECT.captures(&unquoted)?;
    let t = clean_target(&c[1]);
    (!t.is_empty()).then_some(t)
}

fn clean_target(t: &str) -> String {
    t.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// `cmd` with the contents of quoted strings replaced by spaces, except
/// when the whole quoted string is a redirect target (kept, quotes removed).
fn strip_quoted(cmd: &str) -> String {
    let mut out = String::with_capacity(cmd.len());
    let mut quote: Option<char> = None;
    let mut last_non_space = ' ';
    let mut keep = false;
    for c in cmd.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push(if keep { ' ' } else { c });
            }
            Some(_) => out.push(if keep { c } else { ' ' }),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                keep = last_non_space == '>';
                out.push(if keep { ' ' } else { c });
            }
            None => out.push(c),
        }
        if !c.is_whitespace() && quote.is_none() {
            last_non_space = c;
        }
    }
    out
}

/// Cloud login commands that use a long-lived key: (what, matched text).
pub fn static_cloud_login(line: &str) -> Option<&'static str> {
    static AWS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\baws\s+configure\s+set\s+(?:\S+\.)?aws_secret_access_key\b").expect("aws")
    });
    static GCLOUD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\bgcloud\s+auth\s+activate-service-account\b.*--key-file").expect("gcloud")
    });
    static AZ: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\baz\s+login\b.*--service-principal\b.*\s(?:-p|--password|--secret)[\s=]")
            .expect("az")
    });
    if AWS.is_match(line) {
        Some("aws configure with a static secret access key")
    } else if GCLOUD.is_match(line) {
        Some("gcloud with a service-account key file")
    } else if AZ.is_match(line) && !line.contains("--federated-token") {
        Some("az login with a service-principal secret")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<ScriptLine> {
        text.lines()
            .enumerate()
            .map(|(i, t)| ScriptLine {
                text: t.to_string(),
                line: i as u64 + 1,
            })
            .collect()
    }

    fn refs(t: &str) -> Vec<String> {
        if t.contains("$TOKEN") || t.contains("${TOKEN}") {
            vec!["TOKEN".into()]
        } else {
            Vec::new()
        }
    }

    #[test]
    fn classifies_echo_pipe_redirect_tee_heredoc() {
        let uses = secret_uses(
            &lines(
                "echo \"token is $TOKEN\"\n\
                 echo \"$TOKEN\" | docker login -u me --password-stdin\n\
                 echo \"//registry/:_authToken=${TOKEN}\" > ~/.npmrc\n\
                 echo \"T=$TOKEN\" >> \"$GITHUB_ENV\"\n\
                 printf '%s' \"$TOKEN\" | tee creds.txt\n\
                 cat > cfg.ini <<EOF\n\
                 key=$TOKEN\n\
                 EOF\n\
                 cat <<EOF\n\
                 key=$TOKEN\n\
                 EOF\n\
                 curl -H \"Authorization: $TOKEN\" https://x\n\
                 echo '::add-mask::$TOKEN'",
            ),
            &refs,
        );
        assert_eq!(
            uses,
            vec![
                SecretUse::Echoed {
                    refs: vec!["TOKEN".into()],
                    line: 1
                },
                SecretUse::Written {
                    refs: vec!["TOKEN".into()],
                    target: "~/.npmrc".into(),
                    line: 3
                },
                SecretUse::Written {
                    refs: vec!["TOKEN".into()],
                    target: "creds.txt".into(),
                    line: 5
                },
                SecretUse::Written {
                    refs: vec!["TOKEN".into()],
                    target: "cfg.ini".into(),
                    line: 7
                },
                SecretUse::Echoed {
                    refs: vec!["TOKEN".into()],
                    line: 10
                },
            ]
        );
    }

    #[test]
    fn arrows_and_comparisons_are_not_redirects() {
        assert_eq!(redirect_target("echo \"a -> $TOKEN\""), None);
        assert_eq!(redirect_target("test 2>&1"), None);
        assert_eq!(
            redirect_target("make 2> err.log").as_deref(),
            Some("err.log")
        );
    }

    #[test]
    fn cloud_logins() {
        assert!(static_cloud_login("aws configure set aws_secret_access_key $K").is_some());
        assert!(
            static_cloud_login("gcloud auth activate-service-account --key-file=key.json")
                .is_some()
        );
        assert!(
            static_cloud_login("az login --service-principal -u $ID -p $SECRET --tenant $T")
                .is_some()
        );
        assert!(
            static_cloud_login(
                "az login --service-principal -u $ID --tenant $T --federated-token $TOK"
            )
            .is_none()
        );
        assert!(static_cloud_login("aws s3 ls").is_none());
    }
}
