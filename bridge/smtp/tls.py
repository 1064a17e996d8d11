"""The server-side TLS context: certificate, key and the lowest protocol an admin allows."""

from __future__ import annotations

import ssl

from bridge.config import TLSConfig
from bridge.errors import ConfigError

_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def server_context(tls: TLSConfig) -> ssl.SSLContext | None:
    """None when no certificate is configured (then neither STARTTLS nor port 465)."""
    if tls.cert is None or tls.key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"smtp.tls: cannot load cert {tls.cert} / key {tls.key}: {exc}") from exc
    context.minimum_version = _VERSIONS[tls.min_version]
    if tls.min_version in ("1.0", "1.1"):
        # Old scanners: OpenSSL's default security level refuses TLS 1.0/1.1 ciphers.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context
