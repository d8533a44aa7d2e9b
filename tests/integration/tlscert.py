"""A throwaway self-signed certificate for 127.0.0.1: pip caches only what it fetched over HTTPS."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_cert(out_dir: Path) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` for IP 127.0.0.1 with the openssl CLI; returns both paths."""
    cert = out_dir / "cert.pem"
    key = out_dir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "30", "-subj", "/CN=cachefix test index",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         # An end-entity certificate, its own trust anchor: uv's TLS (rustls/webpki) refuses a CA
         # certificate as a server's certificate (CaUsedAsEndEntity); OpenSSL (pip, apt) takes both.
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key
