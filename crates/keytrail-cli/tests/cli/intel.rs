//! `keytrail intel update` and `keytrail detect` with the cached intelligence: a
//! download from a loopback HTTP server (never the internet) of small databases made
//! at test time (an MMDB written by the test-kit, range CSVs, lists), checks that keep
//! the previous copy when a download fails or looks wrong, `--from DIR` for air-gapped
//! machines (the npm databases installed by scripts/install-test-deps.sh), and the
//! report of which intelligence a detect run used, how old it is, or what is off.

use crate::CliTest;
use keytrail_testkit::http::{Response, Server};
use keytrail_testkit::mmdb::{Value, write};
use std::time::SystemTime;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An IPv4 country MMDB built `days_ago`: AWS 52.94/16 in the US, Deutsche Telekom
/// 79.192/10 in Germany.
fn country_mmdb(t: &CliTest, days_ago: u64) -> Vec<u8> {
    let p = t.root().join(format!("made-{days_ago}.mmdb"));
    write(
        &p,
        "keytrail-test-country",
        now() - days_ago * 86_400,
        &[
            (
                "52.94.0.0/16",
                vec![("country_code", Value::Str("US".into()))],
            ),
            (
                "79.192.0.0/10",
                vec![("country_code", Value::Str("DE".into()))],
            ),
        ],
    )
    .unwrap();
    std::fs::read(p).unwrap()
}

const ASN_V4: &str =
    "52.94.0.0,52.94.255.255,16509,AMAZON-02\n79.192.0.0,79.255.255.255,3320,Deutsche Telekom AG\n";
const TOR_EXIT: &str = "185.220.101.7";

/// Serves every database `intel update` fetches, as a mirror would.
fn serve_all(t: &CliTest, srv: &Server) {
    srv.set(
        "/geo-whois-asn-country.mmdb",
        Response::ok(country_mmdb(t, 3)),
    );
    srv.set("/asn-ipv4.csv", Response::ok(ASN_V4));
    srv.set(
        "/asn-ipv6.csv",
        Response::ok("2a05:d000::,2a05:dfff:ffff:ffff:ffff:ffff:ffff:ffff,16509,AMAZON-02\n"),
    );
    srv.set("/x4bnet-vpn-ipv4.txt", Response::ok("37.0.12.0/24\n"));
    srv.set("/x4bnet-vpn-ipv6.txt", Response::ok("2a0d:5600::/32\n"));
    srv.set("/x4bnet-vpn-ASN.txt", Response::ok("AS9009\n"));
    srv.set(
        "/x4bnet-datacenter-ipv4.txt",
        Response::ok("198.51.100.0/24\n"),
    );
    srv.set(
        "/x4bnet-datacenter-ipv6.txt",
        Response::ok("2001:db8::/32\n"),
    );
    srv.set("/x4bnet-datacenter-ASN.txt", Response::ok("AS14061\n"));
    srv.set(
        "/tor-exits.txt",
        Response::ok(format!("{TOR_EXIT}\n185.220.101.8\n"))
            .header("Last-Modified", "Sat, 05 Dec 2026 10:00:00 GMT"),
    );
}

/// 25 SDK calls from AWS, then one from a German home network and one from a Tor exit.
fn write_trail(t: &CliTest) {
    let rec = |i: u32, ip: &str| {
        format!(
            concat!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","#,
                r#""arn":"arn:aws:iam::111122223333:user/app","accountId":"111122223333","#,
                r#""accessKeyId":"AKIAEXAMPLEEXAMPLE12","userName":"app"}},"#,
                r#""eventTime":"2024-05-01T{:02}:{:02}:00Z","eventSource":"s3.amazonaws.com","#,
                r#""eventName":"ListObjects","awsRegion":"us-east-1","#,
                r#""sourceIPAddress":"{}","userAgent":"aws-sdk-go-v2/1.2","#,
                r#""eventID":"e{}","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#
            ),
            i / 60,
            i % 60,
            ip,
            i
        ) + "\n"
    };
    let mut text: String = (0..25).map(|i| rec(i, "52.94.10.10")).collect();
    text.push_str(&rec(30, "79.200.1.1"));
    text.push_str(&rec(40, TOR_EXIT));
    t.write("logs/trail.jsonl", &text);
}

fn rule_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["rule_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn cache(t: &CliTest) -> std::path::PathBuf {
    t.root().join(".cache/keytrail/ipintel")
}

#[test]
fn update_from_a_loopback_mirror_then_detect_uses_the_cache_with_no_flag() {
    let t = CliTest::new();
    write_trail(&t);
    // Every signal on its own: the test looks for the geolocation one.
    let detect = [
        "detect",
        "logs",
        "--format",
        "jsonl",
        "--learning-days",
        "0",
        "--all-signals",
    ];

    // Nothing cached yet: the detectors that need it are off, and the run says so.
    let before = t.run(&detect);
    assert!(
        before.stderr.contains(
            "warning: no IP intelligence, so the geolocation, ASN, VPN and Tor detectors are off"
        ),
        "{}",
        before.stderr
    );
    assert!(
        !rule_ids(&before.stdout)
            .iter()
            .any(|r| r.contains("new-country"))
    );

    let srv = Server::start();
    serve_all(&t, &srv);
    let up = t.run(&["intel", "update", "--mirror", &srv.url()]);
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(up.stdout.matches("data of").count(), 10, "{}", up.stdout);
    assert!(
        up.stdout.contains("tor-exits") && up.stdout.contains("data of 2026-12-05"),
        "{}",
        up.stdout
    );
    assert_eq!(srv.requests(), 10);
    for f in [
        "geo-whois-asn-country.mmdb",
        "asn-ipv4.csv",
        "tor-exits.txt",
        "x4bnet-vpn-ASN.txt",
    ] {
        assert!(cache(&t).join(f).is_file(), "{f}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(cache(&t))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".partial"))
        .collect();
    assert!(leftovers.is_empty());

    let status = t.run(&["intel", "status"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(!status.stdout.contains("not cached"), "{}", status.stdout);
    assert!(status.stdout.contains("3 days old"), "{}", status.stdout);

    // detect, no --ipintel: geolocation (new country) and the Tor list are used.
    let after = t.run(&detect);
    assert_eq!(after.code, 1, "{after:?}");
    let ids = rule_ids(&after.stdout);
    assert!(
        ids.iter()
            .any(|r| r == "keytrail.aws.behaviour.new-country"),
        "{ids:?}"
    );
    assert!(
        ids.iter()
            .any(|r| r == "keytrail.aws.behaviour.anonymising-network"),
        "{ids:?}"
    );
    assert!(after.stderr.contains("ipintel (cache "), "{}", after.stderr);
    assert!(
        after
            .stderr
            .contains("country (geo-whois-asn-country.mmdb, data of ")
            && after.stderr.contains(", 3 days old)")
            && after
                .stderr
                .contains("Tor exits (tor-exits.txt, data of 2026-12-05"),
        "{}",
        after.stderr
    );
    assert!(!after.stderr.contains("warning: no"), "{}", after.stderr);
}

#[test]
fn a_failed_or_suspicious_download_keeps_the_previous_copy() {
    let t = CliTest::new();
    let srv = Server::start();
    serve_all(&t, &srv);
    assert_eq!(t.run(&["intel", "update", "--mirror", &srv.url()]).code, 0);
    let snapshot = || {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(cache(&t))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let good = snapshot();

    srv.set("/tor-exits.txt", Response::status(500));
    srv.set(
        "/x4bnet-vpn-ipv4.txt",
        Response::ok("<html><body>Rate limited</body></html>\n"),
    );
    srv.set("/asn-ipv4.csv", Response::ok("1.0.0.0,1.0.0.255,13335,C\n"));
    srv.set(
        "/geo-whois-asn-country.mmdb",
        Response::ok(country_mmdb(&t, 40)),
    );
    srv.set("/x4bnet-datacenter-ASN.txt", Response::ok(""));
    let up = t.run(&["intel", "update", "--mirror", &srv.url()]);
    assert_eq!(up.code, 2, "{up:?}");
    let failed = |name: &str, why: &str| {
        let line = up
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {}", up.stdout));
        assert!(
            line.contains("FAILED") && line.contains(why) && line.contains("kept the copy of"),
            "{line}"
        );
    };
    failed("tor-exits", "HTTP 500");
    failed("vpn-ipv4", "not a recognised format");
    failed("asn-ipv4", "less than half the cached copy");
    failed("country", "older than the cached copy");
    failed("datacenter-asn", "empty file");
    assert!(
        up.stderr.contains("5 of 10 databases could not be updated"),
        "{}",
        up.stderr
    );
    assert_eq!(snapshot(), good, "a failed update changed the cache");

    // The server is gone: every download fails, and the cache is still whole.
    let url = srv.url();
    drop(srv);
    let offline = t.run(&["intel", "update", "--mirror", &url]);
    assert_eq!(offline.code, 2, "{offline:?}");
    assert_eq!(snapshot(), good);
}

/// Air-gapped: the same databases from a folder, here the npm packages and the X4BNet
/// lists of the test data (the Tor list is not there: reported, not an error).
#[test]
fn update_from_a_folder_for_air_gapped_machines() {
    let t = CliTest::new();
    let from = keytrail_testkit::data::ipintel();
    let up = t.run(&["intel", "update", "--from", &from.display().to_string()]);
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(up.stdout.matches("data of").count(), 9, "{}", up.stdout);
    assert!(
        up.stdout.contains("tor-exits") && up.stdout.contains("not in --from folder: none cached"),
        "{}",
        up.stdout
    );
    assert!(cache(&t).join("x4bnet-datacenter-ipv4.txt.gz").is_file());
    let status = t.run(&["intel", "status"]);
    assert!(
        status.stdout.contains("geo-whois-asn-country.mmdb") && status.stdout.contains("CC BY 4.0"),
        "{}",
        status.stdout
    );
    // A real capture: the cached databases load, and the missing Tor list is named.
    let capture = keytrail_testkit::data::stratus("aws.defense-evasion.cloudtrail-stop");
    let r = t.run(&["detect", &capture.display().to_string()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("country (geo-whois-asn-country.mmdb"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("warning: no Tor exits data, so these detectors are off: Tor use"),
        "{}",
        r.stderr
    );
    // Bad arguments.
    let bad = t.run(&["intel", "update", "--from", "no-such-dir"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("no-such-dir"), "{}", bad.stderr);
    let bad = t.run(&[
        "intel",
        "update",
        "--source",
        "planets=http://127.0.0.1:9/x",
    ]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("unknown database `planets`"),
        "{}",
        bad.stderr
    );
}

/// `--ipintel` replaces the cache for one run; a file it does not recognise is named.
#[test]
fn ipintel_folders_report_files_they_do_not_recognise() {
    let t = CliTest::new();
    write_trail(&t);
    t.write("intel/vpn.txt", "37.0.12.0/24\n");
    t.write("intel/exits.csv", "when,who\nmonday,x\n");
    t.write("intel/README.md", "notes\n");
    let r = t.run(&["detect", "logs", "--ipintel", "intel", "--format", "jsonl"]);
    assert!(
        r.stderr
            .contains("exits.csv: ipintel_unrecognised: not loaded: not a recognised format"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("README"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("ipintel (--ipintel): VPN (vpn.txt, data of"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("warning: no country, ASN, datacenter, Tor exits data"),
        "{}",
        r.stderr
    );
}
