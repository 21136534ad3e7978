//! TLS to PostgreSQL with libpq's meanings of `sslmode` and `sslrootcert`,
//! so that a URL that works with `psql` works here (managed databases —
//! RDS, Cloud SQL, Azure Database — require TLS):
//!
//! - `disable`: plain text;
//! - `prefer` (the default) and `require`: encrypted, the server's
//!   certificate not checked (libpq's meaning; `prefer` falls back to plain
//!   text when the server has no TLS, `require` fails);
//! - `require` with `sslrootcert`, and `verify-ca`: the certificate must
//!   chain to `sslrootcert` (or, without it, to the system's trust store);
//! - `verify-full`: that, and it must name the host connected to.
//!
//! tokio-postgres knows `disable`, `prefer` and `require` only: the other
//! parameters are taken out of the URL here and become the rustls
//! configuration. rustls with ring, as everywhere else in keytrail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// What `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A URL tokio-postgres can parse, and the TLS settings taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    pub url: String,
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` values tokio-postgres does not know (`verify-ca`,
/// `verify-full`, `allow`) and `sslrootcert` out of a URL
/// (`postgres://…?sslmode=verify-full&sslrootcert=ca.pem`) or a key=value
/// string (`host=db sslmode=verify-full sslrootcert=ca.pem`).
pub(crate) fn split(url: &str) -> Result<Split, String> {
    let mut mode = Mode::Prefer;
    let mut root_cert = None;
    let mut take = |k: &str, v: &str| -> Result<bool, String> {
        match k {
            "sslmode" => {
                mode = match v {
                    "disable" => Mode::Disable,
                    // libpq's `allow` tries plain text first; TLS when the
                    // server insists is what `prefer` gives.
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other}: expected disable, allow, prefer, require, verify-ca or verify-full"
                        ));
                    }
                };
                Ok(true)
            }
            "sslrootcert" => {
                root_cert = Some(PathBuf::from(v));
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let out = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let v = percent_decode(v);
                    if !take(k, &v)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        // key=value pairs; values with spaces are quoted, which the
        // settings taken out here never need.
        let mut kept = Vec::new();
        for pair in url.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(k, v.trim_matches('\''))? {
                kept.push(pair);
            }
        }
        kept.join(" ")
    };
    // libpq: `require` with a root certificate checks the chain as
    // `verify-ca` does.
    if mode == Mode::Require && root_cert.is_some() {
        mode = Mode::VerifyCa;
    }
    // tokio-postgres is told `require` for the verifying modes.
    let url = match mode {
        Mode::Disable | Mode::Prefer => with_mode(
            &out,
            if mode == Mode::Disable {
                "disable"
            } else {
                "prefer"
            },
        ),
        _ => with_mode(&out, "require"),
    };
    Ok(Split {
        url,
        mode,
        root_cert,
    })
}

/// `url` with `sslmode=MODE` (a URL's query, or one more key=value pair).
fn with_mode(url: &str, mode: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode={mode}")
    } else {
        format!("{url} sslmode={mode}")
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls configuration of a mode (never called for `disable`).
pub(crate) fn client_config(mode: Mode, root_cert: Option<&Path>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    if matches!(mode, Mode::Disable | Mode::Prefer | Mode::Require) {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert={}: {e}", path.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("sslrootcert={}: {e}", path.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("sslrootcert={}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "sslrootcert={}: no PEM certificate in it",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(
                    "the system's trust store has no certificate: name the server's CA with sslrootcert=PATH"
                        .into(),
                );
            }
        }
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("TLS: {e}"))?;
    Ok(if mode == Mode::VerifyFull {
        builder.with_webpki_verifier(webpki).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
            .with_no_client_auth()
    })
}

/// `prefer` and `require`: the handshake's signatures are checked (the
/// session is encrypted to whoever holds the certificate's key), the
/// certificate is not.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the name is not (webpki checks the
/// chain first, so a name error means the chain was good).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_settings_are_taken_out_of_urls() {
        let s = split("postgres://kt@db:5432/k?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x").unwrap();
        assert_eq!(s.mode, Mode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(
            s.url,
            "postgres://kt@db:5432/k?application_name=x&sslmode=require"
        );
        let s = split("postgres://kt@db/k").unwrap();
        assert_eq!(
            (s.mode, s.url.as_str()),
            (Mode::Prefer, "postgres://kt@db/k?sslmode=prefer")
        );
        let s = split("postgres://kt@db/k?sslmode=disable").unwrap();
        assert_eq!(
            (s.mode, s.url.as_str()),
            (Mode::Disable, "postgres://kt@db/k?sslmode=disable")
        );
        // `require` with a root certificate is `verify-ca`, as in libpq.
        let s = split("host=db user=kt sslmode=require sslrootcert=ca.pem").unwrap();
        assert_eq!(s.mode, Mode::VerifyCa);
        assert_eq!(s.url, "host=db user=kt sslmode=require");
        assert!(
            split("postgres://db/k?sslmode=verify")
                .unwrap_err()
                .contains("verify-full")
        );
    }
}
