"""TLS contexts for Auth0 clients: verification always on, one context per CA bundle.

An ``ssl.SSLContext`` with the system CAs loaded costs about 0.8 MiB; every
client of every tenant used to build its own. Contexts are shared by what they
trust (the system CAs plus an optional CA file and PEM bundle), and the cache is
bounded, so a stream of tenant edits cannot grow memory.
"""

from __future__ import annotations

import functools
import ssl

__all__ = ["InvalidCABundle", "tls_context"]

_CONTEXTS_KEPT = 32


class InvalidCABundle(ValueError):
    """A CA bundle could not be loaded; the message says which and why (never its content)."""


@functools.lru_cache(maxsize=_CONTEXTS_KEPT)
def tls_context(ca_file: str | None, ca_pem: str | None) -> ssl.SSLContext:
    """The verifying context trusting the system CAs, ``ca_file`` and ``ca_pem``."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidCABundle(
                f"the CA file {ca_file} could not be loaded ({type(exc).__name__})"
            ) from None
    if ca_pem:
        try:
            context.load_verify_locations(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise InvalidCABundle(
                "spec.caBundle holds no certificate that can be loaded "
                f"({type(exc).__name__}): give PEM certificates "
                "(-----BEGIN CERTIFICATE----- blocks)"
            ) from None
    return context
