"""Key material for a secured deployment: TLS certificates and SuperNode keys.

Why here and not ``openssl``/``ssh-keygen``: the formats must match what Flower 1.42
loads, and getting them wrong fails late and obscurely. Flower's SuperLink serves every
API (Fleet, Control, Runtime) on one TLS port from ``--ssl-certfile/--ssl-keyfile``;
SuperNodes and the ``flwr`` CLI verify it against ``ca.crt``, so the server certificate
needs a SAN for every name clients dial (``localhost``, ``127.0.0.1``, ``::1`` and e.g.
``superlink`` inside compose). A SuperNode's authentication key is loaded with
``load_ssh_private_key`` (``flower-supernode --auth-supernode-private-key``) and the
public half with ``load_ssh_public_key`` (``flwr supernode register``), on a NIST EC
curve: so ECDSA P-384 in OpenSSH encoding, exactly what ``ssh-keygen -t ecdsa -b 384``
writes.

Every file is written atomically (temp file + rename) with its final mode already set:
private keys and secrets 0600, certificates and public keys 0644, directories we create
0700. An existing CA is reused (so deployed SuperNodes keep trusting the SuperLink when
its certificate is reissued with new hostnames) unless ``new_ca`` is asked for.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedlab.core.errors import FedlabError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"
NODE_PRIVATE_KEY = "auth.key"
NODE_PUBLIC_KEY = "auth.pub"
NODE_PREFIX = "supernode"

DEFAULT_DNS = ("localhost",)
DEFAULT_IPS = ("127.0.0.1", "::1")
CURVE = ec.SECP384R1
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$)(\*\.)?{_LABEL}(\.{_LABEL})*$")
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
DIR_MODE = 0o700


@dataclass(frozen=True)
class CertPaths:
    """Where `generate_certs` put each file (the paths the Flower flags take)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    sans: tuple[str, ...]


@dataclass(frozen=True)
class NodeKeys:
    """One SuperNode's authentication key pair (no SuperExec secret: Flower ignores it in the
    ``subprocess`` isolation fedlab uses, so none is generated)."""

    name: str
    directory: Path
    private_key: Path
    public_key: Path
    key_status: str = "kept"  # "created", "replaced" (--overwrite) or "kept" (already there)


# -- file writing ------------------------------------------------------------------


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) as 0700; an existing directory is left as the user made it."""
    path = Path(path)
    if not path.exists():
        path.mkdir(parents=True, mode=DIR_MODE)
        os.chmod(path, DIR_MODE)  # mkdir's mode is masked by the umask
    elif not path.is_dir():
        raise FedlabError(f"{path} exists and is not a directory")
    return path


def write_secure(path: Path, data: bytes, mode: int) -> None:
    """Write `data` atomically with `mode` set before the file becomes visible."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- TLS ---------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedlab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def san_entries(hostnames: Sequence[str]) -> list[x509.GeneralName]:
    """DNS/IP SANs: the loopback names always, plus each user-given hostname or IP."""
    entries: list[x509.GeneralName] = []
    seen: set[str] = set()
    for raw in (*DEFAULT_DNS, *DEFAULT_IPS, *hostnames):
        host = raw.strip().strip("[]")
        if not host or host.lower() in seen:
            continue
        seen.add(host.lower())
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not _HOSTNAME.match(host):
            raise FedlabError(f"hostname {raw!r} is not a valid DNS name or IP address")
        entries.append(x509.DNSName(host.lower()))
    return entries


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.exists() and not key_path.exists():
        return None
    if not (cert_path.is_file() and key_path.is_file()):
        raise FedlabError(f"{directory}: found only one of {CA_CERT}/{CA_KEY}; pass --new-ca to start over")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError as exc:
        raise FedlabError(f"{directory}: existing CA files are unreadable ({exc}); pass --new-ca") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise FedlabError(f"{directory}: {CA_KEY} does not belong to {CA_CERT}; pass --new-ca")
    return key, cert


def _new_ca(now: dt.datetime, days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(CURVE())
    name = _name("fedlab deployment CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA384())
    )
    return key, cert


def _server_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    sans: list[x509.GeneralName],
    now: dt.datetime,
    days: int,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(CURVE())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("fedlab superlink"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    return key, cert


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )



def generate_certs(
    directory: Path,
    hostnames: Sequence[str] = (),
    *,
    days: int = 365,
    new_ca: bool = False,
) -> CertPaths:
    """CA (reused if present) + SuperLink server certificate in `directory`.

    No SuperExec secret: Flower 1.42 ignores it in ``subprocess`` isolation (the mode fedlab
    runs), so a generated one would be key material used nowhere (issue #27)."""
    if days < 1:
        raise FedlabError(f"--days must be at least 1 (got {days})")
    directory = ensure_private_dir(Path(directory))
    sans = san_entries(hostnames)  # validate before touching anything
    now = dt.datetime.now(dt.UTC)
    existing = None if new_ca else _load_ca(directory)
    if existing is None:
        ca_key, ca_cert = _new_ca(now, max(days, 3650))
        write_secure(directory / CA_KEY, _pem_key(ca_key), PRIVATE_MODE)
        write_secure(directory / CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    else:
        ca_key, ca_cert = existing
    key, cert = _server_cert(ca_key, ca_cert, sans, now, days)
    # Key before certificate: a reader that sees the new cert never pairs it with an old key.
    write_secure(directory / SERVER_KEY, _pem_key(key), PRIVATE_MODE)
    write_secure(directory / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    return CertPaths(
        directory=directory,
        ca_cert=directory / CA_CERT,
        ca_key=directory / CA_KEY,
        server_cert=directory / SERVER_CERT,
        server_key=directory / SERVER_KEY,
        sans=tuple(str(getattr(s, "value", s)) for s in sans),
    )


# -- SuperNode authentication --------------------------------------------------------


def node_name(index: int) -> str:
    """``supernode-1``, ``supernode-2``, ... (1-based: the names compose uses)."""
    return f"{NODE_PREFIX}-{index}"


def generate_node_keys(directory: Path, nodes: int, *, overwrite: bool = False) -> list[NodeKeys]:
    """One directory per SuperNode with its ECDSA P-384 key pair (OpenSSH).

    Existing key pairs are kept unless `overwrite`: a registered public key must not
    silently change under a running federation.
    """
    if nodes < 1:
        raise FedlabError(f"--nodes must be at least 1 (got {nodes})")
    root = ensure_private_dir(Path(directory))
    out: list[NodeKeys] = []
    for i in range(1, nodes + 1):
        name = node_name(i)
        node_dir = ensure_private_dir(root / name)
        priv, pub = node_dir / NODE_PRIVATE_KEY, node_dir / NODE_PUBLIC_KEY
        existed = priv.is_file() and pub.is_file()
        status = "replaced" if existed and overwrite else "kept" if existed else "created"
        if status != "kept":
            key = ec.generate_private_key(CURVE())
            private = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
            public = key.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
            write_secure(priv, private, PRIVATE_MODE)
            write_secure(pub, public + f" fedlab-{name}\n".encode(), PUBLIC_MODE)
        out.append(NodeKeys(name, node_dir, priv, pub, status))
    return out


def load_node_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load a SuperNode key the way ``flower-supernode`` does, with a one-line error."""
    try:
        key = serialization.load_ssh_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise FedlabError(f"{path}: not an OpenSSH private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FedlabError(f"{path}: SuperNode keys must be ECDSA (NIST curve), got {type(key).__name__}")
    return key
