//! Generators of cloud account snapshots for posture tests and benchmarks (owned by the inventory work).
