//! The proxy's TLS side: a certificate authority made for one proxy, whose private key never leaves this
//! process's memory, issuing a leaf per inspected host; the client configuration that checks upstream
//! servers against the system's roots (plus any extra ones); and the PEM text of the files the sandboxed
//! command trusts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where distributions keep the system's root certificates as one PEM file, most common first.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Leaves kept at most; past that the cache starts over (a leaf costs well under a millisecond to make).
const MAX_LEAVES: usize = 1024;

/// How long the authority and its leaves are valid. The key dies with the proxy, so this only has to
/// outlast a session.
const VALIDITY_DAYS: i64 = 365;

/// Why the proxy's certificates could not be set up: the file concerned (if any) and what went wrong.
#[derive(Debug)]
pub(crate) struct TlsSetupError {
    pub path: Option<PathBuf>,
    pub reason: String,
}

/// The proxy's certificate authority and its TLS configurations.
pub(crate) struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
    provider: Arc<CryptoProvider>,
    /// Server configurations by host, each presenting a leaf for that host.
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
    upstream: TlsConnector,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// Makes a fresh ECDSA P-256 authority and an upstream client trusting the system's roots and
    /// `extra_roots` (PEM files).
    pub(crate) fn new(extra_roots: &[PathBuf]) -> Result<Authority, TlsSetupError> {
        let failed = |reason: String| TlsSetupError { path: None, reason };
        // Explicitly ring: no process-wide default provider is assumed or installed.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "errand");
        params.distinguished_name.push(DnType::CommonName, "errand egress proxy (one session)");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(VALIDITY_DAYS);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|error| failed(format!("cannot make the CA key: {error}")))?;
        let issuer = CertifiedIssuer::self_signed(params, key)
            .map_err(|error| failed(format!("cannot make the CA certificate: {error}")))?;

        let mut roots = RootCertStore::empty();
        // Unreadable entries of the system store are skipped: what remains still verifies most hosts, and a
        // host it cannot verify gets a 502 naming the reason.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        for path in extra_roots {
            let unreadable = |reason: String| TlsSetupError { path: Some(path.clone()), reason };
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|error| unreadable(error.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| unreadable(error.to_string()))?;
            if certificates.is_empty() {
                return Err(unreadable("it holds no PEM certificate".to_string()));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|error| unreadable(error.to_string()))?;
            }
        }
        let mut client = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| failed(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let upstream = TlsConnector::from(Arc::new(client));
        Ok(Authority { issuer, provider, leaves: Mutex::new(HashMap::new()), upstream })
    }

    /// The authority's certificate, PEM (no key).
    pub(crate) fn certificate_pem(&self) -> String {
        self.issuer.pem()
    }

    /// An acceptor presenting a leaf for `host` (a DNS name, or an IP address as an IP SAN), signed by the
    /// authority, offering only HTTP/1.1 by ALPN. Leaves are made once per host.
    pub(crate) fn acceptor(&self, host: &str) -> Result<TlsAcceptor, String> {
        if let Some(config) = self.leaves.lock().ok().and_then(|leaves| leaves.get(host).cloned()) {
            return Ok(TlsAcceptor::from(config));
        }
        let cannot = |error: &dyn std::fmt::Display| format!("cannot make a certificate for {host}: {error}");
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::new(vec![host.to_string()]).map_err(|error| cannot(&error))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(VALIDITY_DAYS);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|error| cannot(&error))?;
        let leaf = params.signed_by(&key, &self.issuer).map_err(|error| cannot(&error))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| cannot(&error))?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .map_err(|error| cannot(&error))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        if let Ok(mut leaves) = self.leaves.lock() {
            if leaves.len() >= MAX_LEAVES {
                leaves.clear();
            }
            leaves.insert(host.to_string(), Arc::clone(&config));
        }
        Ok(TlsAcceptor::from(config))
    }

    /// Opens TLS to `host` over `stream` with SNI `host`, verifying its certificate against the trusted roots.
    pub(crate) async fn connect(&self, host: &str, stream: TcpStream) -> Result<TlsStream<TcpStream>, String> {
        let name =
            ServerName::try_from(host.to_string()).map_err(|error| format!("{host:?} is no TLS name: {error}"))?;
        self.upstream.connect(name, stream).await.map_err(|error| format!("the TLS handshake failed: {error}"))
    }
}

/// The system's root certificates as PEM text: the file `SSL_CERT_FILE` names, else the distribution's
/// bundle; empty when none is found.
pub(crate) fn system_roots_pem() -> String {
    let named = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    named
        .iter()
        .map(PathBuf::as_path)
        .chain(SYSTEM_BUNDLES.iter().map(Path::new))
        .find_map(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leaves_name_their_host_chain_to_the_authority_and_speak_http_1_1() {
        let authority = Authority::new(&[]).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(authority.certificate_pem().as_bytes()).unwrap()).unwrap();
        let mut client = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = TlsConnector::from(Arc::new(client));
        for (leaf_for, asked_for, trusted) in [
            ("example.com", "example.com", true),
            ("127.0.0.1", "127.0.0.1", true),
            ("::1", "::1", true),
            ("example.com", "example.org", false),
            ("127.0.0.1", "127.0.0.2", false),
        ] {
            let (near, far) = tokio::io::duplex(64 * 1024);
            let acceptor = authority.acceptor(leaf_for).unwrap();
            let server = tokio::spawn(async move { acceptor.accept(far).await.map(|_| ()) });
            let connected = client.connect(ServerName::try_from(asked_for.to_string()).unwrap(), near).await;
            assert_eq!(connected.is_ok(), trusted, "leaf for {leaf_for}, asked for {asked_for}: {connected:?}");
            if let Ok(stream) = connected {
                assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
            }
            let _ = server.await;
        }
        let first = authority.acceptor("example.com").unwrap();
        assert!(Arc::ptr_eq(first.config(), authority.acceptor("example.com").unwrap().config()));
    }

    #[test]
    fn the_authority_pem_holds_a_certificate_and_no_key() {
        let pem = Authority::new(&[]).unwrap().certificate_pem();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert!(!pem.contains("PRIVATE KEY"), "{pem}");
    }

    #[test]
    fn an_unreadable_extra_root_names_the_file() {
        let folder = tempfile::tempdir().unwrap();
        let empty = folder.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        for path in [folder.path().join("missing.pem"), empty] {
            let error = Authority::new(std::slice::from_ref(&path)).unwrap_err();
            assert_eq!(error.path.as_deref(), Some(path.as_path()));
        }
    }
}
