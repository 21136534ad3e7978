//! Posture benchmark (placeholder until the generator lands).
fn main() {}
