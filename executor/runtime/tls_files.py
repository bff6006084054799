"""A broker's TLS files in its sandbox: the PEM key store and trust store Kafka reads.

The key store holds the private key, so both files are created with mode 0600 (never readable by
other users of the agent, not even for a moment: the mode is set when the file is created).
"""
from __future__ import annotations

import os
from pathlib import Path

from kmfwire.taskdata import TlsMaterial

KEYSTORE, TRUSTSTORE = "tls/keystore.pem", "tls/truststore.pem"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file (a relaunch in place) keeps no wider mode
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)


def write_tls_files(sandbox: Path, material: TlsMaterial) -> tuple[Path, Path]:
    """Write the key store (key, then the certificate chain) and the trust store (the CA);
    return their paths."""
    keystore, truststore = sandbox / KEYSTORE, sandbox / TRUSTSTORE
    _write_private(keystore, material.key + material.cert_chain)
    _write_private(truststore, material.ca_cert)
    return keystore, truststore
