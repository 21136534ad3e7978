//! Fake secrets for tests, generated at test time (owned by the scan engine work).
