"""Throwaway TLS material for test servers: a self-signed CA and server certificates it
signs, made with `cryptography` (ECDSA P-256: fast to generate, accepted by OpenSSL 3).

`make_ca` writes `<name>.crt` (the root certificate a client's sslrootcert names) and
keeps the key in memory; `ServerCert` writes `<name>.crt`/`<name>.key` for a server
(PostgreSQL's ssl_cert_file/ssl_key_file, PgBouncer's client_tls_*), naming the DNS names
and IP addresses verify-full may check.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 2


@dataclass(frozen=True)
class CertificateAuthority:
    cert_file: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class ServerCert:
    cert_file: Path
    key_file: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _window() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALID_DAYS)


def make_ca(directory: Path, name: str = "root", common: str = "mem0infra test CA"
            ) -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window()
    certificate = (
        x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256()))
    cert_file = directory / f"{name}.crt"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    cert_file.chmod(0o644)
    return CertificateAuthority(cert_file, certificate, key)


def make_server_cert(ca: CertificateAuthority, directory: Path, name: str = "server",
                     dns: tuple[str, ...] = ("localhost",),
                     ips: tuple[str, ...] = ("127.0.0.1",), owner: str | None = None
                     ) -> ServerCert:
    """A server certificate signed by `ca` for `dns` and `ips`; its key file is 0600 and,
    given `owner`, owned by that account (PostgreSQL refuses a key others can read)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window()
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    certificate = (
        x509.CertificateBuilder().subject_name(_name(dns[0] if dns else ips[0]))
        .issuer_name(ca.certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256()))
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key_file.chmod(0o600)
    if owner is not None and os.geteuid() == 0:
        for path in (cert_file, key_file):
            shutil.chown(path, owner, owner)
    return ServerCert(cert_file, key_file)
