//! Self-signed certificates for development and the Helm chart's self-signed mode:
//! a CA plus a CA-signed serving certificate (`svcplane webhook --generate-certs DIR`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::Error;

/// Paths written by [`generate_certs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedCerts {
    /// `ca.crt`: the CA to put in the ValidatingWebhookConfiguration `caBundle`.
    pub ca_cert: PathBuf,
    /// `tls.crt`: the serving certificate.
    pub cert: PathBuf,
    /// `tls.key`: the serving key (PKCS#8).
    pub key: PathBuf,
}

fn gen_err(e: rcgen::Error) -> Error {
    Error::CertGeneration(e.to_string())
}

/// Write `ca.crt`, `tls.crt` and `tls.key` into `dir` (created if needed); the serving
/// certificate is signed by the CA and valid for `dns_names` (IP literals become IP SANs).
pub fn generate_certs(dir: &Path, dns_names: &[String]) -> Result<GeneratedCerts, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io(dir.display().to_string(), e.to_string()))?;
    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "svcplane-webhook-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).map_err(gen_err)?;

    let key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::new(dns_names.to_vec()).map_err(gen_err)?;
    params.distinguished_name.push(
        DnType::CommonName,
        dns_names
            .first()
            .cloned()
            .unwrap_or_else(|| "svcplane-webhook".into()),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(gen_err)?;

    let out = GeneratedCerts {
        ca_cert: dir.join("ca.crt"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    write(&out.ca_cert, &ca.pem(), Access::Public)?;
    // Write the key before the certificate so a watcher never pairs a new cert with an old key
    // for long; the reloader also rejects mismatched pairs.
    write(&out.key, &key.serialize_pem(), Access::OwnerOnly)?;
    write(&out.cert, &cert.pem(), Access::Public)?;
    Ok(out)
}

/// Who may read a written file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Certificates: the default mode (umask applies).
    Public,
    /// Private keys: mode 0600 from creation on, so the key is never readable by others,
    /// not even between creation and a later chmod.
    OwnerOnly,
}

fn write(path: &Path, contents: &str, access: Access) -> Result<(), Error> {
    use std::io::Write as _;
    // Write then rename, so a reader never sees a half-written file.
    let tmp = path.with_extension(match access {
        Access::Public => "crt.tmp",
        Access::OwnerOnly => "key.tmp",
    });
    let io = |p: &Path, e: std::io::Error| Error::Io(p.display().to_string(), e.to_string());
    // A leftover from an interrupted run may carry other permissions: start afresh.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp, e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if access == Access::OwnerOnly {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(contents.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}
