//! What to do about a secret baked into an image, as data every output
//! format can print ([`keytrail_types::Remediation`], set on
//! [`Finding::remediation`]): ordered steps (rotate first, since a rebuilt
//! image does not un-leak a pushed one; rebuild with build secrets instead
//! of the instruction that leaked it; delete the tags and digests;
//! invalidate build caches) and every scanned image, platform, layer and
//! config entry that ships the secret. Built from a finding's locations
//! after [`ContentSeen::expand_findings`](super::ContentSeen::expand_findings),
//! so identical layers and files in other tags are included.
//!
//! The instruction that leaked the secret is read from the image history
//! (`created_by`, as the classic builder and BuildKit write it) and from the
//! config key: `ENV` (config `Env`), `ARG` (a build argument recorded in a
//! `RUN` history line, `|1 KEY=value /bin/sh -c …`), `LABEL`, `CMD`,
//! `ENTRYPOINT`, `HEALTHCHECK`, `ONBUILD`, a literal in a `RUN` line, or a
//! file put in a layer by `COPY`, `ADD` or `RUN`.

use std::collections::{BTreeMap, BTreeSet};

use keytrail_types::{
    AffectedConfigEntry, AffectedImage, AffectedLayer, Finding, ImageOrigin, Location, Origin,
    Remediation, RemediationStep,
};

/// The remediation of one finding seen in container images (the type every
/// output format prints).
pub type ImageRemediation = Remediation;

/// The remediation block for `finding`, if any of its locations is in a
/// container image.
pub fn remediation(finding: &Finding) -> Option<Remediation> {
    let secret = finding.secret.expose().as_str();
    let mut by_image: BTreeMap<(String, Option<String>, Option<String>), AffectedImage> =
        BTreeMap::new();
    for loc in &finding.locations {
        let Origin::Image(o) = &loc.origin else {
            continue;
        };
        let key = (
            o.image.clone(),
            o.manifest_digest.clone(),
            o.platform.clone(),
        );
        let entry = by_image.entry(key).or_insert_with(|| AffectedImage {
            image: o.image.clone(),
            manifest_digest: o.manifest_digest.clone(),
            platform: o.platform.clone(),
            ..AffectedImage::default()
        });
        entry.visible_in_final |= o.visible_in_final;
        // Every `Env` entry is a line of one `@config:Env` text: line N is `Env[N-1]`.
        let in_config = loc.path.rsplit_once("@config:").map(|(_, k)| match k {
            "Env" => format!("Env[{}]", loc.line.saturating_sub(1)),
            k => k.to_string(),
        });
        match (in_config, o.layer) {
            (Some(key), _) => {
                if !entry.config.iter().any(|c| c.key == key) {
                    let instruction = config_instruction(&key, o, loc, secret);
                    entry.config.push(AffectedConfigEntry {
                        key,
                        instruction: instruction.map(str::to_string),
                    });
                }
            }
            (None, Some(index)) => add_layer(entry, o, index, &loc.path),
            (None, None) => {}
        }
    }
    if by_image.is_empty() {
        return None;
    }
    let mut affected: Vec<AffectedImage> = by_image.into_values().collect();
    for a in &mut affected {
        a.layers.sort_by_key(|l| l.index);
        a.config.sort_by(|x, y| x.key.cmp(&y.key));
    }
    let mut references: Vec<String> = affected.iter().map(|a| a.image.clone()).collect();
    references.sort();
    references.dedup();
    let mut digests: Vec<String> = affected
        .iter()
        .filter_map(|a| a.manifest_digest.clone())
        .collect();
    digests.sort();
    digests.dedup();
    let instructions: BTreeSet<String> = affected
        .iter()
        .flat_map(|a| {
            a.config
                .iter()
                .filter_map(|c| c.instruction.clone())
                .chain(a.layers.iter().filter_map(|l| l.instruction.clone()))
        })
        .collect();
    let instructions: Vec<String> = instructions.into_iter().collect();
    let steps = steps(&affected, &instructions, &references, &digests);
    Some(Remediation {
        steps,
        instructions,
        affected,
        references,
        digests,
    })
}

/// Finish the findings of a run that scanned images (after
/// [`ContentSeen::expand_findings`](super::ContentSeen::expand_findings)):
/// set [`Finding::remediation`] on every finding seen in an image, then mask
/// every finding's secret wherever it appears in a location's `created_by`
/// (a history line such as `RUN |1 TOKEN=… /bin/sh -c …` holds the value
/// itself, and every file of that layer carries the line as provenance).
pub fn finish_findings(findings: &mut [Finding]) {
    for f in findings.iter_mut() {
        if f.remediation.is_none() {
            f.remediation = remediation(f);
        }
    }
    let secrets: Vec<(String, String)> = findings
        .iter()
        .filter(|f| {
            f.locations
                .iter()
                .any(|l| matches!(l.origin, Origin::Image(_)))
        })
        .map(|f| f.secret.expose().clone())
        .filter(|s| !s.is_empty())
        .collect::<BTreeSet<String>>()
        .into_iter()
        .map(|s| {
            let masked = keytrail_types::redact(s.as_bytes());
            (s, masked)
        })
        .collect();
    if secrets.is_empty() {
        return;
    }
    let mut masked: BTreeMap<String, Option<String>> = BTreeMap::new();
    for f in findings.iter_mut() {
        for loc in &mut f.locations {
            let Origin::Image(o) = &mut loc.origin else {
                continue;
            };
            let Some(text) = o.created_by.as_mut() else {
                continue;
            };
            let replaced = masked.entry(text.clone()).or_insert_with(|| {
                let mut out = text.clone();
                // Longest first, so a secret containing another is masked whole.
                let mut by_len: Vec<&(String, String)> = secrets.iter().collect();
                by_len.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
                for (secret, redacted) in by_len {
                    if out.contains(secret.as_str()) {
                        out = out.replace(secret.as_str(), redacted);
                    }
                }
                (out != *text).then_some(out)
            });
            if let Some(r) = replaced {
                *text = r.clone();
            }
        }
    }
}

fn add_layer(entry: &mut AffectedImage, o: &ImageOrigin, index: usize, path: &str) {
    let file = path
        .split_once(&format!("@layer{index}:"))
        .map_or(path, |(_, p)| p)
        .to_string();
    match entry.layers.iter_mut().find(|l| l.index == index) {
        Some(l) => {
            l.visible_in_final |= o.visible_in_final;
            if !l.paths.contains(&file) {
                l.paths.push(file);
                l.paths.sort();
            }
        }
        None => entry.layers.push(AffectedLayer {
            index,
            digest: o.layer_digest.clone(),
            instruction: o
                .created_by
                .as_deref()
                .and_then(|t| instruction_of(t, None))
                .map(str::to_string),
            paths: vec![file],
            visible_in_final: o.visible_in_final,
        }),
    }
}

/// The instruction behind a config entry: from its key, or for a history
/// entry from its text (the origin's `created_by`, else the snippet).
fn config_instruction(
    key: &str,
    o: &ImageOrigin,
    loc: &Location,
    secret: &str,
) -> Option<&'static str> {
    let head = key.split('[').next().unwrap_or(key);
    match head {
        "Env" => Some("ENV"),
        "Labels" => Some("LABEL"),
        "Cmd" => Some("CMD"),
        "Entrypoint" => Some("ENTRYPOINT"),
        "Healthcheck" => Some("HEALTHCHECK"),
        "OnBuild" => Some("ONBUILD"),
        "history" => match o.created_by.as_deref() {
            Some(text) => instruction_of(text, Some(secret)),
            None => instruction_of(&loc.snippet, None),
        },
        _ => None,
    }
}

/// The Dockerfile instruction a history `created_by` records, as the
/// classic builder (`/bin/sh -c #(nop)  ENV A=b`, `|1 A=b /bin/sh -c cmd`)
/// and BuildKit (`ENV A=b`, `RUN |1 A=b /bin/sh -c cmd # buildkit`) write
/// it. With `secret`: a secret inside the `|N KEY=value` build-argument
/// prefix of a RUN line came from an `ARG`.
pub(crate) fn instruction_of(text: &str, secret: Option<&str>) -> Option<&'static str> {
    let mut t = text.trim_start();
    if let Some(rest) = t.strip_prefix("/bin/sh -c ") {
        match rest.trim_start().strip_prefix("#(nop)") {
            Some(nop) => t = nop.trim_start(),
            None => return Some("RUN"),
        }
    }
    let run_args = t
        .strip_prefix("RUN ")
        .map(str::trim_start)
        .unwrap_or(t)
        .strip_prefix('|')
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()));
    if let Some(args) = run_args {
        // `|N K1=v1 … KN=vN command`: the build arguments end where the
        // shell command starts.
        let end = args
            .find(" /bin/sh -c")
            .or_else(|| args.find(" /bin/bash -c"))
            .unwrap_or(args.len());
        let in_args = secret.is_some_and(|s| !s.is_empty() && args[..end].contains(s));
        return Some(if in_args { "ARG" } else { "RUN" });
    }
    let word: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    const KNOWN: [&str; 10] = [
        "ENV",
        "ARG",
        "LABEL",
        "CMD",
        "ENTRYPOINT",
        "HEALTHCHECK",
        "ONBUILD",
        "RUN",
        "COPY",
        "ADD",
    ];
    KNOWN.into_iter().find(|k| *k == word)
}

/// How to stop each instruction from leaking the secret.
fn rebuild_advice(instruction: &str) -> &'static str {
    match instruction {
        "ENV" => {
            "ENV stores the value in the image config, readable by anyone who can pull the \
             image (`docker image inspect`): remove the ENV; give the value to the container at \
             run time from the orchestrator's secret store, and to build steps that need it \
             with `RUN --mount=type=secret,id=NAME` (`docker build --secret id=NAME,src=FILE`)."
        }
        "ARG" => {
            "A build argument (ARG, `--build-arg`) is recorded in the history of every RUN step \
             after it (`docker history --no-trunc`): never pass secrets as build arguments; use \
             `docker build --secret id=NAME,src=FILE` and `RUN --mount=type=secret,id=NAME` in \
             the step that needs it."
        }
        "LABEL" => {
            "A LABEL holds the value in the image config: remove it from the Dockerfile and \
             from `--label` build flags."
        }
        "CMD" | "ENTRYPOINT" | "HEALTHCHECK" | "ONBUILD" => {
            "The value is written literally into a CMD, ENTRYPOINT, HEALTHCHECK or ONBUILD \
             instruction stored in the image config: read it at run time from an environment \
             variable or file provided by the orchestrator's secret store instead."
        }
        "RUN" => {
            "A RUN step holds the value (in its command line, recorded in the image history, or \
             in a file it wrote into its layer): mount the secret only for that step with \
             `RUN --mount=type=secret,id=NAME` (`docker build --secret id=NAME,src=FILE`), and \
             write anything derived from it to a `--mount=type=tmpfs` path, not the layer."
        }
        "COPY" | "ADD" => {
            "COPY/ADD put the file into a layer: do not copy it into the image; add it to \
             .dockerignore, mount it only for the build step that needs it (`RUN \
             --mount=type=secret`), and give it to the container at run time from the \
             orchestrator's secret store. In a multi-stage build, make sure the final stage \
             never copies it from an earlier one."
        }
        _ => {
            "Remove the value from the build: mount secrets only for the build step that needs \
             them (`RUN --mount=type=secret`) and give them to the container at run time."
        }
    }
}

fn steps(
    affected: &[AffectedImage],
    instructions: &[String],
    references: &[String],
    digests: &[String],
) -> Vec<RemediationStep> {
    let unknown_file = affected
        .iter()
        .flat_map(|a| &a.layers)
        .any(|l| l.instruction.is_none());
    let unknown_config = affected
        .iter()
        .flat_map(|a| &a.config)
        .any(|c| c.instruction.is_none());
    let hidden_only = affected
        .iter()
        .flat_map(|a| &a.layers)
        .any(|l| !l.visible_in_final);
    let mut rebuild: Vec<String> = Vec::new();
    let mut seen_advice = BTreeSet::new();
    for i in instructions {
        let advice = rebuild_advice(i);
        if seen_advice.insert(advice) {
            rebuild.push(advice.to_string());
        }
    }
    if unknown_file {
        rebuild.push(
            "The value is in a file of an image layer: do not put it in the image (COPY, ADD \
             or a RUN step writing it); mount it only for the build step that needs it (`RUN \
             --mount=type=secret`) or inject it at run time; add the file to .dockerignore."
                .to_string(),
        );
    }
    if unknown_config {
        rebuild.push(
            "The value is in the image config, readable with `docker image inspect` and \
             `docker history --no-trunc`: remove it from the Dockerfile and the build flags."
                .to_string(),
        );
    }
    if hidden_only {
        rebuild.push(
            "Deleting the file in a later layer (RUN rm) does not remove it: the earlier layer \
             still ships it and `docker save` or any registry client extracts it. A multi-stage \
             build whose final stage never receives the file, or squashing, does."
                .to_string(),
        );
    }
    let via = if instructions.is_empty() {
        String::new()
    } else {
        format!(" (it leaked through {})", instructions.join(", "))
    };
    vec![
        RemediationStep {
            action: "rotate_credential".to_string(),
            summary: "Revoke and rotate the credential first: a rebuilt image does not un-leak it"
                .to_string(),
            detail: "Everyone who pulled any affected image, and every registry mirror, cache \
                     and CI runner that stored it, may hold the secret. Revoke it at the issuer, \
                     issue a new one, and review the issuer's access logs for use since the \
                     first affected image was pushed."
                .to_string(),
        },
        RemediationStep {
            action: "rebuild_without_secret".to_string(),
            summary: format!(
                "Rebuild without baking the secret into the image{via}; use build secrets or \
                 mounts instead of ARG, ENV or COPY"
            ),
            detail: rebuild.join(" "),
        },
        RemediationStep {
            action: "delete_images".to_string(),
            summary: format!(
                "Delete the {} affected reference(s) and {} manifest digest(s) from every registry",
                references.len(),
                digests.len()
            ),
            detail: format!(
                "Delete by digest, not only by tag (a deleted tag leaves the manifest pullable by \
                 digest): e.g. `skopeo delete docker://REGISTRY/REPO@DIGEST` or the registry's \
                 API/console, then run its garbage collection. Check mirrors and pull-through \
                 caches. References: {}. Digests: {}.",
                list(references),
                list(digests)
            ),
        },
        RemediationStep {
            action: "invalidate_build_cache".to_string(),
            summary: "Invalidate build caches that hold the secret".to_string(),
            detail: "Layer caches keep the secret-bearing layers: prune builder caches (`docker \
                     builder prune --all`, `buildx prune`), rebuild with `--no-cache`, and \
                     delete registry cache images (`--cache-to type=registry`) and CI caches \
                     keyed on the old Dockerfile."
                .to_string(),
        },
    ]
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none known)".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keytrail_types::{Confidence, Fingerprint, Location, Secret, Severity};

    fn loc(path: &str, o: ImageOrigin) -> Location {
        Location {
            path: path.into(),
            line: 1,
            column: 1,
            offset: 0,
            snippet: String::new(),
            origin: Origin::Image(o),
            decoded: None,
        }
    }

    #[test]
    fn groups_locations_by_image_and_layer() {
        let base = ImageOrigin {
            image: "reg/app:1".into(),
            manifest_digest: Some("sha256:m1".into()),
            platform: Some("linux/amd64".into()),
            ..ImageOrigin::default()
        };
        let layer = ImageOrigin {
            layer: Some(2),
            layer_digest: Some("sha256:l2".into()),
            created_by: Some("COPY .env /app/".into()),
            visible_in_final: false,
            ..base.clone()
        };
        let other_tag = ImageOrigin {
            image: "reg/app:2".into(),
            manifest_digest: Some("sha256:m2".into()),
            ..layer.clone()
        };
        let config = ImageOrigin {
            visible_in_final: true,
            ..base.clone()
        };
        let finding = Finding {
            rule_id: "x".into(),
            rule_name: "x".into(),
            confidence: Confidence::High,
            severity: Severity::High,
            fingerprint: Fingerprint("f".into()),
            secret: Secret::new("s".into()),
            secret_redacted: "s".into(),
            context: vec![],
            locations: vec![
                loc("reg/app:1@layer2:/app/.env", layer),
                // The second line of the config's environment: Env[1].
                Location {
                    line: 2,
                    ..loc("reg/app:1@config:Env", config)
                },
                loc("reg/app:2@layer2:/app/.env", other_tag),
            ],
            notes: vec![],
            remediation: None,
            verification: None,
            blast_radius: None,
        };
        let r = remediation(&finding).unwrap();
        assert_eq!(r.references, vec!["reg/app:1", "reg/app:2"]);
        assert_eq!(r.digests, vec!["sha256:m1", "sha256:m2"]);
        assert_eq!(r.steps[0].action, "rotate_credential");
        let first = &r.affected[0];
        assert_eq!(first.config[0].key, "Env[1]");
        assert_eq!(first.config[0].instruction.as_deref(), Some("ENV"));
        assert_eq!(first.layers[0].instruction.as_deref(), Some("COPY"));
        assert_eq!(r.instructions, vec!["COPY", "ENV"]);
        assert!(
            r.steps[1].summary.contains("COPY, ENV"),
            "{}",
            r.steps[1].summary
        );
        assert!(r.steps[1].detail.contains("ENV stores the value"));
        assert!(r.steps[1].detail.contains(".dockerignore"));
        assert_eq!(first.layers[0].paths, vec!["/app/.env"]);
        assert!(!first.layers[0].visible_in_final);
        assert!(first.visible_in_final, "config is visible");
        assert!(r.steps[1].detail.contains("RUN rm"));
        assert!(r.steps[2].detail.contains("sha256:m2"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["affected"][1]["layers"][0]["index"], 2);
        assert_eq!(json["affected"][0]["config"][0]["instruction"], "ENV");
    }

    #[test]
    fn finish_sets_remediation_and_masks_history_lines() {
        let secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        let line = format!("RUN |1 GH_TOKEN={secret} /bin/sh -c ./fetch # buildkit");
        let run_layer = ImageOrigin {
            image: "reg/app:1".into(),
            manifest_digest: Some("sha256:m1".into()),
            layer: Some(1),
            layer_digest: Some("sha256:l1".into()),
            created_by: Some(line.clone()),
            visible_in_final: true,
            ..ImageOrigin::default()
        };
        let finding = |secret: &str, loc: Location| Finding {
            rule_id: "x".into(),
            rule_name: "x".into(),
            confidence: Confidence::High,
            severity: Severity::High,
            fingerprint: Fingerprint("f".into()),
            secret: Secret::new(secret.into()),
            secret_redacted: keytrail_types::redact(secret.as_bytes()),
            context: vec![],
            locations: vec![loc],
            notes: vec![],
            remediation: None,
            verification: None,
            blast_radius: None,
        };
        let mut findings = vec![
            finding(
                secret,
                loc("reg/app:1@config:history[1]", run_layer.clone()),
            ),
            // Another secret in a file the RUN step wrote: its provenance
            // carries the same history line.
            finding(
                "other-secret-value-0123456789",
                loc("reg/app:1@layer1:/root/.netrc", run_layer),
            ),
            finding(
                "plain-file-secret-0123456789",
                Location {
                    origin: Origin::File,
                    ..loc("a.txt", ImageOrigin::default())
                },
            ),
        ];
        finish_findings(&mut findings);
        let masked = format!(
            "RUN |1 GH_TOKEN={} /bin/sh -c ./fetch # buildkit",
            keytrail_types::redact(secret.as_bytes())
        );
        for f in &findings[..2] {
            let Origin::Image(o) = &f.locations[0].origin else {
                panic!("image origin")
            };
            assert_eq!(o.created_by.as_deref(), Some(masked.as_str()));
        }
        let r = findings[0].remediation.as_ref().unwrap();
        assert_eq!(r.instructions, vec!["ARG"], "computed before masking");
        let r = findings[1].remediation.as_ref().unwrap();
        assert_eq!(r.affected[0].layers[0].instruction.as_deref(), Some("RUN"));
        assert!(r.steps[1].detail.contains("RUN step"));
        assert!(findings[2].remediation.is_none(), "not an image finding");
    }

    #[test]
    fn instructions_from_history_text() {
        let s = Some("ghp_secret");
        for (text, want) in [
            ("/bin/sh -c #(nop)  ENV TOKEN=ghp_secret", Some("ENV")),
            ("/bin/sh -c #(nop)  ARG TOKEN", Some("ARG")),
            ("/bin/sh -c #(nop) COPY file:0a1b in /app ", Some("COPY")),
            ("/bin/sh -c curl -H 'x: ghp_secret' x", Some("RUN")),
            ("|1 TOKEN=ghp_secret /bin/sh -c make", Some("ARG")),
            (
                "RUN |1 TOKEN=ghp_secret /bin/sh -c make # buildkit",
                Some("ARG"),
            ),
            (
                "RUN |1 MODE=x /bin/sh -c echo ghp_secret > f # buildkit",
                Some("RUN"),
            ),
            ("ADD https://x/y.tgz /opt/ # buildkit", Some("ADD")),
            ("COPY .env /app/ # buildkit", Some("COPY")),
            ("label a=ghp_secret", Some("LABEL")),
            ("WORKDIR /app", None),
            ("", None),
        ] {
            assert_eq!(instruction_of(text, s), want, "{text}");
        }
    }
}
