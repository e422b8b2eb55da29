//! TLS for the listener: PEM files, or a self-signed certificate made at
//! start (rcgen) for local browsers and tests.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::ServerError;
use crate::config::TlsMode;

/// A ready acceptor, and the certificate when we made it ourselves (so a
/// client in the same process can trust exactly it).
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) self_signed_pem: Option<String>,
}

pub(crate) fn load(mode: &TlsMode) -> Result<Option<Tls>, ServerError> {
    let (chain, key, self_signed_pem) = match mode {
        TlsMode::Off => return Ok(None),
        TlsMode::SelfSigned { subject_alt_names } => {
            let certified = rcgen::generate_simple_self_signed(subject_alt_names.clone())
                .map_err(|e| ServerError::SelfSigned(e.to_string()))?;
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                certified.signing_key.serialize_der(),
            ));
            let pem = certified.cert.pem();
            (vec![certified.cert.der().clone()], key, Some(pem))
        }
        TlsMode::Files { cert, key } => (read_chain(cert)?, read_key(key)?, None),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    // WebSocket upgrades need HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        self_signed_pem,
    }))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let bad = |reason: String| ServerError::TlsFile {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("no PEM CERTIFICATE block in the file".to_owned()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| ServerError::TlsFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_comes_with_its_pem() {
        let tls = load(&TlsMode::self_signed_localhost()).unwrap().unwrap();
        let pem = tls.self_signed_pem.unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn a_missing_certificate_file_is_named_in_the_error() {
        let mode = TlsMode::Files {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        };
        let err = load(&mode).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}
