"""What every part of the Kubernetes adapter shares: the API client and its typed APIs."""

from __future__ import annotations

from typing import Any

from kubernetes.aio import client

__all__ = ["ApiAccess"]


class ApiAccess:
    """One async API client; the generated APIs are used untyped (this package speaks dicts)."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__()  # cooperative: the store's other parts come after this one
        self.api = api
        # The generated API accepts plain dicts for bodies at run time but types
        # them as models; this package speaks dicts, so the APIs are used untyped.
        self.core: Any = client.CoreV1Api(api)
        self.custom: Any = client.CustomObjectsApi(api)
        self.apps: Any = client.AppsV1Api(api)

    def _plain(self, obj: Any) -> dict[str, Any]:
        sanitize: Any = self.api.sanitize_for_serialization
        data: dict[str, Any] = sanitize(obj)
        return data
