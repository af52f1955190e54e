"""A local certificate authority and the TLS listener's certificate, kept in the data dir.

    <data_dir>/tls/ca.crt      the CA users trust once (``corral ca`` prints how)
    <data_dir>/tls/ca.key      its key (0600); never leaves the machine
    <data_dir>/tls/server.crt  the listener's certificate, signed by the CA
    <data_dir>/tls/server.key  its key (0600)

``ensure`` is idempotent: the CA is made once and kept (re-trusting it on every start would be
a chore; ``ensure_ca`` alone is what ``corral ca`` needs); the server certificate is re-issued
only when ``reissue_reason`` says so — the names it must cover changed, it nears expiry, or it
was not signed by the current CA. That decision is a pure function of the certificates, the
wanted names and ``now``; the rest writes files atomically (temp file, fsync, rename) so a
crash leaves the old pair or the new one, under an exclusive lock on ``tls/.lock`` so two
processes (``corral up`` and ``corral ca``) never interleave a key with another's certificate.

Names: what ``names_for`` lists — loopback, the bind host, ``*.dkr.ecr.<region>.localhost``
for every ECR region (other accounts' registry hosts), and the advertised registry host; when
that is ECR-shaped (``<acct>.dkr.ecr.<region>.amazonaws.com``), also its siblings for other
accounts (``corral.ecr.scope.registry_host`` decides those names) and
``api.ecr.<region>.amazonaws.com``, the API host the ECR credential helper calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.config import WILDCARDS, Settings, is_ip, split_host
from corral.ecr.scope import aws_ecr_domain, registry_host

CA_LIFETIME = timedelta(days=3650)
LEAF_LIFETIME = timedelta(days=397)  # the longest a publicly trusted leaf may live
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def names_for(settings: Settings, regions: list[str]) -> list[str]:
    """Every DNS name and IP address the server certificate must cover, sorted."""
    names = {"localhost", "127.0.0.1", "::1", settings.advertised_host}
    if settings.host not in WILDCARDS:
        names.add(settings.host)
    for region in regions:  # any account's registry: "*" stands for the account
        names.add(f"*.dkr.ecr.{region}.localhost")
        names.add(split_host(registry_host(settings, "*", region))[0])
    domain = aws_ecr_domain(settings)
    if domain is not None:
        names.add(f"api.ecr.{settings.region}.{domain}")
    return sorted(names)


def ecr_regions() -> list[str]:
    """The regions botocore's endpoint data lists for ECR (a client may name any of them)."""
    import botocore.session

    return sorted(botocore.session.get_session().get_available_regions("ecr"))


def ensure(data_dir: Path, names: list[str], now: datetime | None = None) -> TlsFiles:
    """The CA and a server certificate for ``names``, made or renewed as needed."""
    now = now or datetime.now(UTC)
    files = _files(data_dir)
    with _locked(files.cert.parent):
        ca, ca_key = _load_or_make_ca(files.cert.parent, now)
        leaf = (x509.load_pem_x509_certificate(files.cert.read_bytes())
                if files.cert.exists() and files.key.exists() else None)
        if leaf is not None and not _pair(leaf, files.key):
            leaf = None  # a crash between writing the key and the certificate
        if reissue_reason(leaf, ca, names, now) is not None:
            key = ec.generate_private_key(ec.SECP256R1())
            _write(files.key, _key_pem(key), private=True)
            _write(files.cert, _pem(_issue_leaf(key, ca, ca_key, names, now)))
    return files


def ensure_ca(data_dir: Path, now: datetime | None = None) -> Path:
    """The CA certificate's path, the CA made first if there is none; the server certificate
    is left alone (only ``corral up --tls`` knows which names it must cover)."""
    files = _files(data_dir)
    with _locked(files.cert.parent):
        _load_or_make_ca(files.cert.parent, now or datetime.now(UTC))
    return files.ca_cert


def _files(data_dir: Path) -> TlsFiles:
    base = data_dir / "tls"
    base.mkdir(parents=True, exist_ok=True)
    return TlsFiles(base / "ca.crt", base / "server.crt", base / "server.key")


@contextlib.contextmanager
def _locked(base: Path) -> Iterator[None]:
    with open(base / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _load_or_make_ca(base: Path, now: datetime
                     ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = base / "ca.crt", base / "ca.key"
    if not (cert_path.exists() and key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, _pem(_issue_ca(key, now)))
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return x509.load_pem_x509_certificate(cert_path.read_bytes()), key


def reissue_reason(leaf: x509.Certificate | None, ca: x509.Certificate, names: list[str],
                   now: datetime) -> str | None:
    """Why the server certificate must be issued again, or None to keep it.
    Rules, first match wins:"""
    if leaf is None:
        return "missing"
    if not _signed_by(leaf, ca):  # the CA was replaced (someone deleted ca.*); every CA
        return "issued by another CA"  # has the same subject, so only the signature tells
    if leaf.not_valid_after_utc - now < RENEW_BEFORE:
        return "near expiry"
    if sorted(_san_strings(leaf)) != sorted(names):
        return "names changed"
    return None


def _signed_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _pair(cert: x509.Certificate, key_path: Path) -> bool:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


def _san_strings(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _general_names(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _issue_ca(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Corral"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Corral local CA")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))


def _issue_leaf(key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, ca_key,
                names: list[str], now: datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Corral"),
                         x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(min(now + LEAF_LIFETIME, ca.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hosts_lines(settings: Settings) -> list[str]:
    """``/etc/hosts`` lines that make the registry hosts clients are told resolve for glibc
    and Go programs alike (docker, podman, the credential helper): ``*.localhost`` names
    resolve through glibc only with libnss-myhostname, and ECR-shaped ``amazonaws.com`` names
    never resolve here without them. The address is the bind host's (resolved when it is a
    name); a comment line says so when it is a name that does not resolve."""
    ip, note = _hosts_address(settings.host)
    accounts = [settings.account_id, *(a for a, _, _ in settings.extra_accounts)]
    names = [f"{a}.dkr.ecr.{settings.region}.localhost" for a in accounts]
    names += [split_host(registry_host(settings, a, settings.region))[0] for a in accounts]
    domain = aws_ecr_domain(settings)
    if domain is not None:
        names.append(f"api.ecr.{settings.region}.{domain}")
    skip = {"localhost", settings.host}  # the bind host resolves already: it was bound
    lines = [f"{ip} {name}" for name in dict.fromkeys(names)
             if name not in skip and not is_ip(name)]
    return ([note] if note else []) + lines


def _hosts_address(host: str) -> tuple[str, str | None]:
    """(the address a hosts line maps names to, a comment line or None) for a bind host."""
    if host in (*WILDCARDS, "localhost"):
        return "127.0.0.1", None
    if is_ip(host):
        return host, None
    try:
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0], None
    except (OSError, IndexError):
        return "127.0.0.1", f"# {host} does not resolve here: 127.0.0.1 used instead"
