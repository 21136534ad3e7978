//! keytrail's profile for the embedded SigmaHQ rules (`keytrail-rules`'
//! `data/sigma-profile.yml`): which rules run by default and at which level, each
//! choice with its measured reason. The rules themselves stay as SigmaHQ wrote them;
//! rules a user loads with `--sigma` are never profiled.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use keytrail_types::Severity;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileSyntax {
    version: u32,
    rules: Vec<EntrySyntax>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySyntax {
    id: String,
    title: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    level: Option<String>,
    reason: String,
}

/// What the profile says about one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEntry {
    /// The rule's title as the profile names it (checked against the rule by a test).
    pub title: String,
    /// Whether the rule runs.
    pub enabled: bool,
    /// Its level when it runs at another than SigmaHQ's.
    pub level: Option<Severity>,
    /// The measured reason for the choice.
    pub reason: String,
}

/// Rule id → choice. Rules not named run as written.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    entries: BTreeMap<String, ProfileEntry>,
}

impl Profile {
    /// Parses a profile (`version: 1`, `rules: [{id, title, enabled | level, reason}]`).
    pub fn parse(text: &str) -> Result<Profile, String> {
        let syn: ProfileSyntax = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        if syn.version != 1 {
            return Err(format!("unsupported profile version {}", syn.version));
        }
        let mut entries = BTreeMap::new();
        for e in syn.rules {
            if e.reason.trim().is_empty() {
                return Err(format!("rule {} ({}) has no reason", e.id, e.title));
            }
            let level = match e.level.as_deref() {
                None => None,
                Some(l @ ("informational" | "low" | "medium" | "high" | "critical")) => {
                    Some(super::level_severity(Some(l)))
                }
                Some(other) => return Err(format!("rule {}: unknown level `{other}`", e.id)),
            };
            let (enabled, level) = match (e.enabled, level) {
                (Some(false), None) => (false, None),
                (None, Some(l)) => (true, Some(l)),
                _ => {
                    return Err(format!(
                        "rule {} ({}): give either `enabled: false` or a `level`",
                        e.id, e.title
                    ));
                }
            };
            let entry = ProfileEntry {
                title: e.title,
                enabled,
                level,
                reason: e.reason.trim().to_string(),
            };
            if entries.insert(e.id.clone(), entry).is_some() {
                return Err(format!("rule {} is named twice", e.id));
            }
        }
        Ok(Profile { entries })
    }

    /// The default profile embedded in keytrail (parsed once; a test keeps it valid).
    pub fn builtin() -> &'static Profile {
        static P: OnceLock<Profile> = OnceLock::new();
        P.get_or_init(|| {
            Profile::parse(keytrail_rules::SIGMA_PROFILE)
                .expect("the embedded sigma-profile.yml parses (tested)")
        })
    }

    /// The choice for rule `id`, if the profile names it.
    pub fn get(&self, id: &str) -> Option<&ProfileEntry> {
        self.entries.get(id)
    }

    /// Every choice, by rule id.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &ProfileEntry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_turn_rules_off_or_set_their_level_with_a_reason() {
        let p = Profile::parse(
            "version: 1\nrules:\n  - {id: a, title: A, enabled: false, reason: noisy}\n  - {id: b, title: B, level: informational, reason: daily}\n",
        )
        .unwrap();
        assert!(!p.get("a").unwrap().enabled);
        assert_eq!(p.get("b").unwrap().level, Some(Severity::Info));
        assert!(p.get("c").is_none());
        for bad in [
            "version: 1\nrules:\n  - {id: a, title: A, enabled: false, reason: ''}\n",
            "version: 1\nrules:\n  - {id: a, title: A, reason: why}\n",
            "version: 1\nrules:\n  - {id: a, title: A, enabled: false, level: low, reason: why}\n",
            "version: 1\nrules:\n  - {id: a, title: A, level: loud, reason: why}\n",
            "version: 2\nrules: []\n",
            "version: 1\nrules:\n  - {id: a, title: A, enabled: false, reason: x}\n  - {id: a, title: A, enabled: false, reason: y}\n",
        ] {
            assert!(Profile::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_builtin_profile_parses() {
        assert!(Profile::builtin().entries().count() >= 2);
    }
}
