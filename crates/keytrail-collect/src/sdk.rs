//! The AWS SDK configuration shared by collection and the S3 log source: one
//! HTTPS client (rustls with ring), the usual credential chain (environment,
//! profile, SSO, web identity, container and instance credentials), endpoint
//! overrides such as `AWS_ENDPOINT_URL`, and bounded timeouts.

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// Loads the SDK configuration: `profile` from the shared config files (else the
/// default chain), `endpoint` for every service (else the SDK's own resolution,
/// which honours `AWS_ENDPOINT_URL`). Without a configured region, us-east-1.
pub(crate) async fn load_config(profile: Option<&str>, endpoint: Option<&str>) -> SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    // One HTTPS client (rustls with the ring provider) for every service
    // client and the credential providers.
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    let config = loader.load().await;
    // Global services (IAM, S3 listing, STS, Organizations) need a region
    // for signing; without one configured, use us-east-1 like the CLI's
    // global endpoints.
    if config.region().is_some() {
        config
    } else {
        config
            .to_builder()
            .region(aws_config::Region::new("us-east-1"))
            .build()
    }
}

/// An S3 client for `region`, path-style when the endpoint is overridden
/// (emulators and proxies rarely serve virtual-hosted bucket names).
pub(crate) fn s3_client(config: &SdkConfig, region: Option<&str>) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(config);
    if let Some(r) = region {
        b = b.region(aws_sdk_s3::config::Region::new(r.to_string()));
    }
    if config.endpoint_url().is_some() {
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}
