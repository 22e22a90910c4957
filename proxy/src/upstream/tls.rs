//! TLS towards one upstream: the rustls client configuration built from the compiled-in public
//! roots, an extra CA bundle and a client certificate, each read from its mounted file; and
//! what a failed handshake tells the operator and the client.

use std::path::PathBuf;
use std::sync::Arc;

use ai_api_proxy_config::{ProxyConfig, UpstreamTls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// The files one upstream's TLS configuration is built from (none: the public roots only).
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// Extra trusted CAs (PEM).
    pub ca: Option<PathBuf>,
    /// Trust only `ca`.
    pub replace_roots: bool,
    /// Client certificate chain and private key (PEM).
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl TlsFiles {
    /// The files `tls` names, where `config` mounts them.
    pub fn new(tls: Option<&UpstreamTls>, config: &ProxyConfig) -> Self {
        let Some(tls) = tls else {
            return Self::default();
        };
        Self {
            ca: tls.ca.as_ref().map(|ca| ca.path(config)),
            replace_roots: tls.replace_roots,
            identity: tls.client_certificate.as_ref().map(|c| {
                (
                    c.certificate.path(&config.secrets_dir),
                    c.key.path(&config.secrets_dir),
                )
            }),
        }
    }

    /// Every file read, to watch for changes.
    pub fn paths(&self) -> Vec<PathBuf> {
        let identity = self
            .identity
            .iter()
            .flat_map(|(c, k)| [c.clone(), k.clone()]);
        self.ca.iter().cloned().chain(identity).collect()
    }

    /// Reads the files and builds the configuration. The error names the file and what is
    /// wrong with it, never its content.
    pub fn load(&self) -> Result<Arc<ClientConfig>, String> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))
        };
        let ca = self.ca.as_ref().map(read).transpose()?;
        let identity = match &self.identity {
            Some((cert, key)) => Some((read(cert)?, read(key)?)),
            None => None,
        };
        let named = |what: &PathBuf| {
            let path = what.display().to_string();
            move |e: String| format!("{path}: {e}")
        };
        let roots = roots(ca.as_deref(), self.replace_roots).map_err(|e| match &self.ca {
            Some(path) => named(path)(e),
            None => e,
        })?;
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup failed: {e}"))?
                .with_root_certificates(roots);
        let config = match (&identity, &self.identity) {
            (Some((cert, key)), Some((cert_path, key_path))) => {
                let chain = certificates(cert).map_err(named(cert_path))?;
                let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
                    format!(
                        "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file",
                        key_path.display()
                    )
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    format!(
                        "{} and {}: the client certificate and key cannot be used together: {e}",
                        cert_path.display(),
                        key_path.display()
                    )
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// The public roots unless `replace_roots`, plus every certificate of `ca`.
fn roots(ca: Option<&[u8]>, replace_roots: bool) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if !replace_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(pem) = ca {
        for (i, cert) in certificates(pem)?.into_iter().enumerate() {
            roots
                .add(cert)
                .map_err(|e| format!("certificate {} cannot be a trusted root: {e}", i + 1))?;
        }
    }
    Ok(roots)
}

/// Every `CERTIFICATE` block of a PEM file (at least one).
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate in the file".into());
    }
    Ok(certs)
}

/// The name to verify instead of the base URL's host, as rustls wants it.
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_owned())
        .map_err(|_| format!("tls.server_name `{name}` is not a DNS name or an IP address"))
}

/// What a TLS failure was, in words for the client (fixed phrases: never the peer's data).
pub fn client_reason(e: &rustls::Error) -> &'static str {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "its certificate is not signed by a CA the proxy trusts"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "its certificate is not valid for the name the proxy verifies"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "its certificate has expired"
        }
        E::InvalidCertificate(_) => "its certificate was refused",
        E::AlertReceived(_) => {
            "it refused the handshake (a client certificate missing or not trusted?)"
        }
        _ => "the TLS handshake failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("tls-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let files = TlsFiles {
            ca: Some(ca.clone()),
            replace_roots: true,
            identity: None,
        };
        let e = files.load().err().unwrap_or_default();
        assert!(e.starts_with(&ca.display().to_string()), "{e}");
        assert!(e.contains("no PEM certificate"), "{e}");
        let missing = TlsFiles {
            ca: Some(dir.join("absent.crt")),
            ..TlsFiles::default()
        };
        assert!(
            missing
                .load()
                .err()
                .unwrap_or_default()
                .contains("absent.crt")
        );
        assert!(TlsFiles::default().load().is_ok(), "the public roots alone");
        let _ = std::fs::remove_dir_all(dir);
    }
}
