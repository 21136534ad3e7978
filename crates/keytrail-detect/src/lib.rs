//! CloudTrail abuse detection: identity normalisation, baselines, detectors and a Sigma engine.
