"""Self-signed TLS material for tests of the local hub's TLS listener: the hub's own test
CA and server certificate (`eventhubs_localhub.entra.pki`), as its Entra mode makes them."""

from __future__ import annotations

from pathlib import Path

from eventhubs_localhub.entra.pki import make_tls_files


def make_tls_certs(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost/127.0.0.1: (ca, cert, key)."""
    files = make_tls_files(directory)
    return files.ca, files.cert, files.key
