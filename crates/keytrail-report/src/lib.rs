//! Output encoders for keytrail: human text, JSON, JSONL and SARIF.
