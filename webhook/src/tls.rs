//! TLS from certificate files, reloaded without restart: a [`ResolvesServerCert`] whose
//! certified key is swapped when the files' modification times change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// Where the serving certificate and key live, and how often to check them for changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain (`tls.crt`).
    pub cert: PathBuf,
    /// PEM private key (`tls.key`).
    pub key: PathBuf,
    /// How often to compare modification times.
    pub reload_interval: Duration,
}

/// Load a certificate chain and key into a rustls [`CertifiedKey`] (ring provider).
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, Error> {
    let io =
        |p: &Path, e: &dyn std::fmt::Display| Error::Io(p.display().to_string(), e.to_string());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| io(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| io(cert, &e))?;
    if chain.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificates found",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| io(key, &e))?;
    let provider = rustls::crypto::ring::default_provider();
    let ck =
        CertifiedKey::from_der(chain, key_der, &provider).map_err(|e| Error::Tls(e.to_string()))?;
    Ok(ck)
}

fn mtimes(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let c = std::fs::metadata(&files.cert)
        .and_then(|m| m.modified())
        .ok()?;
    let k = std::fs::metadata(&files.key)
        .and_then(|m| m.modified())
        .ok()?;
    Some((c, k))
}

/// A certificate resolver that serves the current key and can be swapped at runtime.
#[derive(Debug)]
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
    files: TlsFiles,
    seen: RwLock<Option<(SystemTime, SystemTime)>>,
}

impl ReloadingCert {
    /// Load the files once; fails if they are unreadable or mismatched.
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, Error> {
        let seen = mtimes(&files);
        let ck = load_certified_key(&files.cert, &files.key)?;
        Ok(Arc::new(ReloadingCert {
            current: RwLock::new(Arc::new(ck)),
            files,
            seen: RwLock::new(seen),
        }))
    }

    /// Reload if the files changed since the last load. Returns `Ok(true)` when swapped.
    /// A failed reload keeps serving the previous certificate.
    pub fn reload_if_changed(&self) -> Result<bool, Error> {
        let now = mtimes(&self.files);
        if now.is_none()
            || *self
                .seen
                .read()
                .map_err(|_| Error::Tls("lock poisoned".into()))?
                == now
        {
            return Ok(false);
        }
        let ck = load_certified_key(&self.files.cert, &self.files.key)?;
        *self
            .current
            .write()
            .map_err(|_| Error::Tls("lock poisoned".into()))? = Arc::new(ck);
        *self
            .seen
            .write()
            .map_err(|_| Error::Tls("lock poisoned".into()))? = now;
        Ok(true)
    }

    /// Poll the files every `reload_interval` until the returned task is dropped/aborted.
    pub fn spawn_watcher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.files.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match me.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(cert = %me.files.cert.display(), "reloaded serving certificate")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "certificate reload failed; keeping the previous one")
                    }
                }
            }
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

/// A rustls server config (ring, TLS 1.2/1.3, ALPN h2 and http/1.1) using `resolver`.
pub fn server_config(resolver: Arc<ReloadingCert>) -> Result<Arc<ServerConfig>, Error> {
    let mut cfg =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
