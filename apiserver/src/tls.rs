//! A self-signed CA and serving certificate generated at start, for HTTPS mode, and the
//! admin's client certificate the generated kubeconfig uses (CN `svcplane-admin`, O
//! `system:masters`, as kubeadm's `super-admin.conf`). Client certificates signed by the CA
//! are verified in the handshake; clients without one are served too (they authenticate with
//! tokens or are anonymous), as upstream with `--client-ca-file`.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// Generated TLS material.
pub struct ServingCerts {
    /// PEM of the CA certificate clients must trust.
    pub ca_pem: String,
    /// Server configuration for the listener.
    pub server_config: Arc<rustls::ServerConfig>,
    /// The admin's client certificate (PEM), signed by the CA.
    pub admin_cert_pem: String,
    /// The admin's private key (PKCS#8 PEM).
    pub admin_key_pem: String,
}

/// Common name (user) of the admin client certificate.
pub const ADMIN_USER: &str = "svcplane-admin";

/// Generates a CA and a serving certificate for `localhost`, `127.0.0.1`, `::1` and `ip`.
pub fn generate(ip: IpAddr) -> Result<ServingCerts, Error> {
    let tls = |e: rcgen::Error| Error::Tls(e.to_string());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "svcplane-apiserver-ca");
    let ca_key = KeyPair::generate().map_err(tls)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;

    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(tls)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "svcplane-apiserver");
    for addr in [
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip,
    ] {
        if !params.subject_alt_names.contains(&SanType::IpAddress(addr)) {
            params.subject_alt_names.push(SanType::IpAddress(addr));
        }
    }
    let key = KeyPair::generate().map_err(tls)?;
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(tls)?;

    let mut admin = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    admin
        .distinguished_name
        .push(DnType::OrganizationName, crate::authn::MASTERS);
    admin
        .distinguished_name
        .push(DnType::CommonName, ADMIN_USER);
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_key = KeyPair::generate().map_err(tls)?;
    let admin_cert = admin
        .signed_by(&admin_key, &ca_cert, &ca_key)
        .map_err(tls)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_cert.der().to_vec()))
        .map_err(|e| Error::Tls(e.to_string()))?;
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| Error::Tls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| Error::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServingCerts {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
        admin_cert_pem: admin_cert.pem(),
        admin_key_pem: admin_key.serialize_pem(),
    })
}
