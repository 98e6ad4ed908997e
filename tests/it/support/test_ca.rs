//! A CA made at test time and a server certificate for `localhost` and `127.0.0.1`
//! signed by it (rustls refuses a CA certificate as a server certificate).
//! Shared by the SMTP and Dovecot test peers, which include it with `#[path]`.

pub struct TestCertificates {
    pub ca_pem: String,
    pub server_pem: String,
    pub server_der: Vec<u8>,
    pub server_key_pem: String,
    pub server_key_der: Vec<u8>,
}

pub fn make(ca_name: &str) -> TestCertificates {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    let ca_key = KeyPair::generate().expect("generate the test CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("test CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .expect("self-sign the test CA");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("generate the test server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("test server certificate parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .expect("sign the test server certificate");
    TestCertificates {
        ca_pem: ca_cert.pem(),
        server_pem: server_cert.pem(),
        server_der: server_cert.der().to_vec(),
        server_key_pem: server_key.serialize_pem(),
        server_key_der: server_key.serialize_der(),
    }
}
