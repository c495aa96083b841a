"""A throwaway certificate authority, made per test run, for TLS on 127.0.0.1.

MSAL refuses non-https authorities, so the test IdP (and the fake workspace,
like the real one) serve TLS with a server certificate from this CA. Clients
trust it through REQUESTS_CA_BUNDLE, which wins over any `verify=` argument
(../shared/facts/test-idp.md §1).
"""

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass


# A name no resolver knows: only the tests' forward proxy maps it to 127.0.0.1 (forward_proxy_fixtures.py), so
# a client that bypasses the proxy cannot reach a server by it. The server certificate covers it.
PROXY_ONLY_HOST = "workspace.proxy-only.test"


@dataclass
class Pki:
    ca_pem: str  # path of the CA certificate (what clients trust)
    cert_pem: str  # server certificate for 127.0.0.1, localhost and PROXY_ONLY_HOST
    key_pem: str  # its private key
    ca_key_pem: str  # the CA's private key (a TLS-inspecting proxy signs with it)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_pem, self.key_pem)
        return ctx

    def client_env(self) -> dict:
        """Environment entries that make requests/MSAL/Node trust this CA, and only it."""
        return {"REQUESTS_CA_BUNDLE": self.ca_pem, "SSL_CERT_FILE": self.ca_pem,
                "NODE_EXTRA_CA_CERTS": self.ca_pem, "CURL_CA_BUNDLE": self.ca_pem}


def make_pki(directory: str) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "claude-db test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName(PROXY_ONLY_HOST),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    os.makedirs(directory, exist_ok=True)
    paths = Pki(os.path.join(directory, "ca.pem"), os.path.join(directory, "server.pem"),
                os.path.join(directory, "server-key.pem"), os.path.join(directory, "ca-key.pem"))
    with open(paths.ca_pem, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths.cert_pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    for path, private in ((paths.key_pem, key), (paths.ca_key_pem, ca_key)):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return paths
