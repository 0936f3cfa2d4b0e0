"""Errors of the Kubernetes adapter: the only ones that leave :mod:`auth0_rotator.kube`.

The generated client raises ``ApiException`` with the response's headers and
body in its text; those never travel further than this package. Callers see
:class:`KubeError` (with the HTTP ``status`` only), :class:`Conflict` for a
failed resourceVersion check, and :class:`SecretConflict` for a Secret that
belongs to someone else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from kubernetes.aio import client

__all__ = ["Conflict", "KubeError", "SecretConflict", "api_errors"]


class KubeError(Exception):
    """The Kubernetes API refused or failed a call; ``status`` is its HTTP status (0: none)."""

    def __init__(self, what: str, status: int = 0) -> None:
        super().__init__(f"{what}: HTTP {status}" if status else what)
        self.what = what
        self.status = status


class Conflict(KubeError):
    """A resourceVersion-checked write lost to another writer (HTTP 409)."""

    def __init__(self, what: str) -> None:
        super().__init__(what, 409)


class SecretConflict(Exception):
    """The target Secret exists and belongs to someone else."""

    def __init__(
        self, namespace: str, name: str, owner: str | None, claimant: str | None = None
    ) -> None:
        if owner:
            advice = f"it belongs to {owner}; choose another spec.secretName"
        else:
            advice = (
                "it is not managed by auth0-rotator; choose another spec.secretName, delete "
                "that Secret, or hand it over by labelling it "
                "app.kubernetes.io/managed-by=auth0-rotator and annotating it "
                f"auth0rotator.dev/owner={claimant or '<namespace>/<name>'} (keys this "
                "resource does not write are kept)"
            )
        super().__init__(f"Secret {namespace}/{name} already exists and {advice}")
        self.owner = owner


@contextlib.contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Turn an ``ApiException`` raised in the block into :class:`KubeError` / :class:`Conflict`."""
    try:
        yield
    except client.ApiException as exc:
        status = int(exc.status or 0)
        if status == 409:
            raise Conflict(f"{what}: changed meanwhile") from None
        raise KubeError(what, status) from None
