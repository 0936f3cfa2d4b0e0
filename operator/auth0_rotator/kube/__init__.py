"""Kubernetes access: custom resources, Secrets, workloads, Events, and our own echoes.

The only package that calls the Kubernetes API (``kubernetes.aio``, never a
blocking client). It speaks in plain dicts and domain errors: ``ApiException``
never leaves it (:mod:`._errors`). :class:`KubeStore` is one object made of
focused parts:

- :mod:`._resources` — Auth0ClientSecrets, tenants, namespace labels;
- :mod:`._secrets` — Secrets the operator owns (never anyone else's);
- :mod:`._workloads` — restart targets;
- :mod:`._events` — Events, posted in the background and aggregated;
- :mod:`._echoes` — our own writes, recognised when the watch shows them.
"""

from __future__ import annotations

from kubernetes.aio import client

from auth0_rotator.kube._echoes import Echoes
from auth0_rotator.kube._errors import Conflict, KubeError, SecretConflict
from auth0_rotator.kube._events import EventRecorder
from auth0_rotator.kube._resources import ResourceAccess
from auth0_rotator.kube._secrets import UNREAD, OwnerInfo, SecretAccess, decode_secret
from auth0_rotator.kube._workloads import WorkloadAccess

__all__ = [
    "UNREAD",
    "Conflict",
    "KubeError",
    "KubeStore",
    "OwnerInfo",
    "SecretConflict",
    "decode_secret",
]


class KubeStore(ResourceAccess, SecretAccess, WorkloadAccess, EventRecorder, Echoes):
    """Reads and writes what the operator manages, through one async API client."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
