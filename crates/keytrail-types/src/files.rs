//! Finding the YAML files of a rule or data directory (secret rules,
//! Sigma rules, privilege-escalation paths): one walk with the same
//! ordering and error reporting everywhere.

use crate::Diagnostic;
use std::path::{Path, PathBuf};

/// Deepest directory nesting followed below the root.
const MAX_DEPTH: usize = 32;

/// Every `*.yml` / `*.yaml` file under `root` (recursively), sorted by
/// path; `root` itself when it is a file. Unreadable directories become
/// diagnostics naming them and the walk goes on. Symbolic links to
/// directories are not followed (no loops); links to files are listed.
pub fn yaml_files(root: &Path) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    if root.is_file() {
        files.push(root.to_path_buf());
    } else {
        walk(root, 0, &mut files, &mut diags);
        files.sort();
    }
    (files, diags)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::error(
                "unreadable",
                dir.display().to_string(),
                e.to_string(),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            if depth < MAX_DEPTH {
                walk(&path, depth + 1, out, diags);
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) && path.is_file()
        {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_yaml_recursively_sorted_and_reports_missing_dirs() {
        let root = std::env::temp_dir().join(format!("keytrail-yaml-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        for f in ["b/c/z.yaml", "a.yml", "b/x.yml", "notes.md", "b/c/y.json"] {
            std::fs::write(root.join(f), "x: 1\n").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(&root, root.join("b/loop")).unwrap();
        let (files, diags) = yaml_files(&root);
        let rel: Vec<_> = files
            .iter()
            .map(|p| {
                p.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(rel, ["a.yml", "b/c/z.yaml", "b/x.yml"]);
        assert!(diags.is_empty());
        let (one, _) = yaml_files(&root.join("a.yml"));
        assert_eq!(one, [root.join("a.yml")]);
        let (none, diags) = yaml_files(&root.join("missing"));
        assert!(none.is_empty());
        assert_eq!(diags.len(), 1);
        assert!(diags[0].to_string().contains("missing"), "{}", diags[0]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
