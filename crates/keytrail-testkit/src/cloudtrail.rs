//! Generators of realistic CloudTrail activity with injected attacks (owned by the detect work).
