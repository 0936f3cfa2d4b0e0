"""A wrapper that keeps secret values out of logs, reprs and exception messages.

Every client secret and bearer token the operator handles travels as a
:class:`SecretValue`. Formatting one prints ``<redacted>``; only
:meth:`SecretValue.reveal` gives the value, and it is called exactly where the
value must leave the process (an HTTP body, a Kubernetes Secret).
"""

from __future__ import annotations

import hmac
import secrets

__all__ = ["SecretValue", "generate_client_secret"]

_REDACTED = "<redacted>"


class SecretValue:
    """An opaque secret string; ``str()``/``repr()`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("SecretValue wraps a str")
        self._value = value

    def reveal(self) -> str:
        """Return the secret itself; call only where it must leave the process."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({_REDACTED})"

    def __str__(self) -> str:
        return _REDACTED

    def __format__(self, spec: str) -> str:
        return _REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Refuse pickling: a pickle would carry the value somewhere unplanned.
        raise TypeError("SecretValue cannot be pickled")


def generate_client_secret(length: int = 64) -> SecretValue:
    """Make a strong URL-safe client secret of ``length`` (>= 48) characters."""
    if length < 48:
        raise ValueError("client secrets are at least 48 characters")
    value = ""
    while len(value) < length:
        value += secrets.token_urlsafe(length)
    return SecretValue(value[:length])
