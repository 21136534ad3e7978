//! Credential inventory and posture checks over cloud API snapshots (pure: no cloud calls).
