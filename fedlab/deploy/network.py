"""The loopback network of a local deployment: its address, free ports, and the TLS check.

Socket helpers with no process in them, so ``scripts/container-e2e.sh`` can use `check_tls` on
its own: it verifies a containerised SuperLink's certificate the way a SuperNode would.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from fedlab.core.errors import FedlabError

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open while choosing, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def check_tls(
    host: str, port: int, ca_file: Path, server_name: str = "localhost", timeout: float = 5.0
) -> None:
    """Verify the SuperLink's certificate with `ca_file`, as a SuperNode would; one-line error."""
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name),
        ):
            return
    except ssl.SSLCertVerificationError as exc:
        raise FedlabError(
            f"TLS check of the SuperLink at {host}:{port} failed: its certificate is not trusted by "
            f"{ca_file} ({exc.verify_message}); use the ca.crt from the same `fedlab deploy certs` run"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise FedlabError(f"TLS check of the SuperLink at {host}:{port} failed: {exc}") from None
