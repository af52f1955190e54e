"""A local certificate authority and the TLS listener's certificate, kept in the data dir.

    <data_dir>/tls/ca.crt      the CA users trust once (``corral ca`` prints how)
    <data_dir>/tls/ca.key      its key (0600); never leaves the machine
    <data_dir>/tls/server.crt  the listener's certificate, signed by the CA
    <data_dir>/tls/server.key  its key (0600)

``ensure`` is idempotent: the CA is made once and kept (re-trusting it on every start would be
a chore); the server certificate is re-issued only when ``reissue_reason`` says so — the names
it must cover changed, it nears expiry, or it was not signed by the current CA. That decision
is a pure function of the certificates, the wanted names and ``now``; the rest writes files
atomically (temp file, fsync, rename) so a crash leaves the old pair or the new one.

Names: what ``names_for`` lists — loopback, the bind host, ``*.dkr.ecr.<region>.localhost``
for every ECR region (other accounts' registry hosts), and the advertised registry host; when
that is ECR-shaped (``<acct>.dkr.ecr.<region>.amazonaws.com``), also its siblings for other
accounts and ``api.ecr.<region>.amazonaws.com``, the API host the ECR credential helper calls.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.config import Settings
from corral.ecr.scope import registry_of_host

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
    names = {"localhost", "127.0.0.1", "::1"}
    if settings.host not in ("0.0.0.0", "::", ""):
        names.add(settings.host)
    names.update(f"*.dkr.ecr.{region}.localhost" for region in regions)
    if settings.registry_host:
        host = settings.advertised_host
        names.add(host)
        ecr = registry_of_host(host)
        if ecr is not None and host.endswith(".amazonaws.com"):
            names.add(f"*.dkr.ecr.{ecr[1]}.amazonaws.com")
            names.add(f"api.ecr.{ecr[1]}.amazonaws.com")
    return sorted(names)


def ecr_regions() -> list[str]:
    """The regions botocore's endpoint data lists for ECR (a client may name any of them)."""
    import botocore.session

    return sorted(botocore.session.get_session().get_available_regions("ecr"))


def ensure(data_dir: Path, names: list[str], now: datetime | None = None) -> TlsFiles:
    """The CA and a server certificate for ``names``, made or renewed as needed."""
    now = now or datetime.now(UTC)
    base = data_dir / "tls"
    base.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(base / "ca.crt", base / "server.crt", base / "server.key")
    ca_key_path = base / "ca.key"
    if not (files.ca_cert.exists() and ca_key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(ca_key_path, _key_pem(key), private=True)
        _write(files.ca_cert, _pem(_issue_ca(key, now)))
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    leaf = (x509.load_pem_x509_certificate(files.cert.read_bytes())
            if files.cert.exists() and files.key.exists() else None)
    if leaf is not None and not _pair(leaf, files.key):
        leaf = None  # a crash between writing the key and the certificate
    if reissue_reason(leaf, ca, names, now) is not None:
        key = ec.generate_private_key(ec.SECP256R1())
        _write(files.key, _key_pem(key), private=True)
        _write(files.cert, _pem(_issue_leaf(key, ca, ca_key, names, now)))
    return files


def reissue_reason(leaf: x509.Certificate | None, ca: x509.Certificate, names: list[str],
                   now: datetime) -> str | None:
    """Why the server certificate must be issued again, or None to keep it.
    Rules, first match wins:"""
    if leaf is None:
        return "missing"
    if leaf.issuer != ca.subject:  # the CA was replaced (someone deleted ca.*)
        return "issued by another CA"
    if leaf.not_valid_after_utc - now < RENEW_BEFORE:
        return "near expiry"
    if sorted(_san_strings(leaf)) != sorted(names):
        return "names changed"
    return None


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
    never resolve here without them."""
    ip = settings.host if settings.host not in ("0.0.0.0", "::", "", "localhost") else "127.0.0.1"
    accounts = [settings.account_id, *(a for a, _, _ in settings.extra_accounts)]
    region = settings.region
    names = [f"{a}.dkr.ecr.{region}.localhost" for a in accounts]
    host = settings.advertised_host
    ecr = registry_of_host(host) if settings.registry_host else None
    if ecr is not None and host.endswith(".amazonaws.com"):
        names += [f"{a}.dkr.ecr.{ecr[1]}.amazonaws.com" for a in accounts]
        names.append(f"api.ecr.{ecr[1]}.amazonaws.com")
    elif settings.registry_host and not _is_ip(host) and host != "localhost":
        names.append(host)
    return [f"{ip} {name}" for name in dict.fromkeys(names)]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
