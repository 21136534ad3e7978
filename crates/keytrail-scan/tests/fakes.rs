//! The test-kit's fake secrets against the scanner's validators: the test-kit
//! computes checksums and structures on its own (it does not depend on this
//! crate), so each side checks the other.

use keytrail_scan::validate::Validator;
use keytrail_testkit::secrets::FakeSecrets;

#[test]
fn checksummed_tokens_validate() {
    let mut g = FakeSecrets::new(1);
    let tokens = [
        g.github_classic(),
        g.github_oauth(),
        g.github_app_user(),
        g.github_app_installation(),
        g.github_refresh(),
        g.npm(),
    ];
    for t in tokens {
        assert_eq!(t.len(), 40, "{t}");
        assert!(
            Validator::GithubCrc32
                .check(t.as_bytes(), t.as_bytes())
                .is_ok(),
            "{t}"
        );
    }
    let bad = g.github_classic_bad_checksum();
    assert!(
        Validator::GithubCrc32
            .check(bad.as_bytes(), bad.as_bytes())
            .is_err()
    );
}

#[test]
fn structured_secrets_validate() {
    let mut g = FakeSecrets::new(2);
    let j = g.jwt();
    assert!(
        Validator::Jwt.check(j.as_bytes(), j.as_bytes()).is_ok(),
        "{j}"
    );
    for p in [
        g.pem_rsa_private_key(),
        g.pem_pkcs8_private_key(),
        g.pem_ec_private_key(),
        g.openssh_private_key(),
    ] {
        assert!(
            Validator::PemPrivateKey
                .check(p.as_bytes(), p.as_bytes())
                .is_ok(),
            "{p}"
        );
    }
    let a = g.aws_key_pair();
    assert!(
        Validator::AwsKeyId
            .check(a.access_key_id.as_bytes(), b"")
            .is_ok()
    );
    assert_eq!(a.secret_access_key.len(), 40);
    let sa = g.gcp_service_account_json();
    let start = sa.find("-----BEGIN").unwrap();
    assert!(
        Validator::PemPrivateKey
            .check(&sa.as_bytes()[start..], b"")
            .is_ok()
    );
    assert!(sa.contains("\"type\": \"service_account\""));
}

/// Generated strings never look like filler to the scanner's placeholder filter.
#[test]
fn random_strings_pass_the_placeholder_filter() {
    let mut g = FakeSecrets::new(4);
    for alphabet in [
        keytrail_testkit::secrets::DIGITS,
        keytrail_testkit::secrets::HEX,
    ] {
        for len in [6, 12, 20, 40] {
            for _ in 0..2_000 {
                let s = g.chars(alphabet, len);
                assert!(!keytrail_scan::filters::is_repetitive(s.as_bytes()), "{s}");
            }
        }
    }
}
