//! Certificates and keys made for one plane (ECDSA P-256, rcgen): one CA that signs the API
//! server's serving certificate (SANs 127.0.0.1 and localhost) and every client certificate
//! (CN = user, O = groups), the service-account token signing key, and kubeconfig files.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The plane's PKI, written under `<plane>/pki/`.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    /// A new CA, the serving certificate and the service-account key pair.
    pub fn create(dir: &Path) -> Result<Self, String> {
        let dir = dir.join("pki");
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut params = CertificateParams::new(Vec::new()).map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "infra-e2e-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().map_err(err)?).map_err(err)?;
        let pki = Self { dir, ca };
        pki.write("ca.crt", &pki.ca.pem())?;

        let mut serving =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(err)?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        pki.sign("apiserver", serving)?;

        let sa = KeyPair::generate().map_err(err)?;
        pki.write("sa.key", &sa.serialize_pem())?;
        pki.write("sa.pub", &sa.public_key_pem())?;
        Ok(pki)
    }

    /// A file of the PKI folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A client certificate for `user` in `groups`: writes `<user>.crt` and `<user>.key`.
    pub fn client(&self, user: &str, groups: &[&str]) -> Result<(), String> {
        let mut params = CertificateParams::new(Vec::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(user, params)
    }

    /// A kubeconfig for `user` (a [`Pki::client`] certificate) at `server`: one cluster, one
    /// user and one context, all named `e2e`, readable by kubectl and kube-rs.
    pub fn kubeconfig(&self, server: &str, user: &str) -> String {
        let file = |name: String| format!("{:?}", self.path(&name));
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: e2e\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
             users:\n- name: e2e\n  user:\n    client-certificate: {crt}\n    client-key: {key}\n\
             contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: e2e\n\
             current-context: e2e\n",
            ca = file("ca.crt".to_owned()),
            crt = file(format!("{user}.crt")),
            key = file(format!("{user}.key")),
        )
    }

    fn sign(&self, name: &str, params: CertificateParams) -> Result<(), String> {
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.ca).map_err(err)?;
        self.write(&format!("{name}.crt"), &cert.pem())?;
        self.write(&format!("{name}.key"), &key.serialize_pem())
    }

    fn write(&self, name: &str, text: &str) -> Result<(), String> {
        let path = self.path(name);
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn err(e: rcgen::Error) -> String {
    format!("certificate: {e}")
}
