"""Private Key JWT: RSA key pairs and the client assertions they sign.

A ``KeyPair`` rotation generates an RSA key (``cryptography``), registers its
public half with Auth0 and hands the private half (PEM PKCS#8) to the
workloads. A client proves it holds the key with a ``client_assertion``: a
JWT signed by it (PyJWT) with ``iss`` = ``sub`` = the client id, ``aud`` =
``https://{domain}/``, a short life and a fresh ``jti`` (SPEC §8; the same
claims as Auth0's official SDKs). Private keys travel as
:class:`~auth0_rotator.secretvalue.SecretValue`; the errors here never quote
a key.
"""

from __future__ import annotations

import functools
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auth0_rotator.secretvalue import SecretValue

__all__ = [
    "ALGORITHMS",
    "ASSERTION_LIFETIME",
    "ASSERTION_TYPE",
    "KEY_SIZES",
    "InvalidPrivateKey",
    "check_private_key",
    "generate_private_key",
    "public_key_pem",
    "sign_assertion",
]

ALGORITHMS = ("RS256", "RS384", "PS256")
"""Signing algorithms Auth0 accepts for Private Key JWT credentials."""
KEY_SIZES = (2048, 3072, 4096)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 180
"""Seconds an assertion is valid (Auth0 accepts at most 300; its SDKs use 180)."""


class InvalidPrivateKey(ValueError):
    """A private key that cannot sign client assertions (never quotes the key).

    Its message completes a sentence about the key: "the key … is not an RSA key".
    """


def generate_private_key(size: int = 2048) -> SecretValue:
    """A new RSA private key of ``size`` bits, PEM PKCS#8, unencrypted.

    CPU-bound (tens of milliseconds at 2048 bits, about a second at 4096):
    async code runs it in a thread.
    """
    if size not in KEY_SIZES:
        raise ValueError(f"RSA key size must be one of {KEY_SIZES}, not {size}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=size)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SecretValue(pem.decode())


@functools.lru_cache(maxsize=64)
def _load(private_key: SecretValue) -> rsa.RSAPrivateKey:
    """The key object (checked once: loading validates the RSA key, which is slow)."""
    try:
        key: Any = serialization.load_pem_private_key(private_key.reveal().encode(), None)
    except (ValueError, TypeError):
        raise InvalidPrivateKey(
            "is not an unencrypted PEM private key (PKCS#8 or PKCS#1)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidPrivateKey("is not an RSA private key (Auth0 accepts RSA keys only)")
    if not KEY_SIZES[0] <= key.key_size <= KEY_SIZES[-1]:
        raise InvalidPrivateKey(
            f"is an RSA key of {key.key_size} bits (Auth0 accepts 2048 to 4096 bits)"
        )
    return key


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise InvalidPrivateKey(f"cannot sign with {algorithm!r} (one of {', '.join(ALGORITHMS)})")


def check_private_key(private_key: SecretValue, algorithm: str) -> None:
    """Raise :class:`InvalidPrivateKey` unless ``private_key`` can sign with ``algorithm``."""
    _check_algorithm(algorithm)
    _load(private_key)


def public_key_pem(private_key: SecretValue) -> str:
    """The public half of ``private_key`` as PEM SubjectPublicKeyInfo (what Auth0 registers)."""
    public = _load(private_key).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign_assertion(
    private_key: SecretValue,
    *,
    algorithm: str,
    client_id: str,
    domain: str,
    key_id: str | None = None,
    lifetime: int = ASSERTION_LIFETIME,
    now: float | None = None,
) -> SecretValue:
    """A ``client_assertion`` for ``client_id`` at ``domain``, signed with ``private_key``.

    Loading a key is CPU-bound the first time (about 0.2 s at 4096 bits, then
    cached): async code runs this in a thread.
    """
    _check_algorithm(algorithm)
    key = _load(private_key)
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"https://{domain}/",
        "iat": issued,
        "exp": issued + lifetime,
        "jti": secrets.token_urlsafe(24),
    }
    headers = {"kid": key_id} if key_id else None
    return SecretValue(jwt.encode(claims, key, algorithm=algorithm, headers=headers))
