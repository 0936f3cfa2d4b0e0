"""The custom resources (Auth0ClientSecrets, tenants) and namespaces, read and status-patched."""

from __future__ import annotations

import fnmatch
from typing import Any

from auth0_rotator.kube._base import ApiAccess
from auth0_rotator.kube._errors import KubeError, api_errors
from auth0_rotator.model import GROUP, VERSION, TenantRef

__all__ = ["ResourceAccess"]

_MERGE = "application/merge-patch+json"
_PLURAL = "auth0clientsecrets"
_LIST_PAGE = 500


def _in_scope(namespace: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``namespace`` is watched: it matches a pattern and no ``!`` exclusion."""
    included = [p for p in patterns if not p.startswith("!")]
    excluded = [p[1:] for p in patterns if p.startswith("!")]
    return any(fnmatch.fnmatchcase(namespace, p) for p in included) and not any(
        fnmatch.fnmatchcase(namespace, p) for p in excluded
    )


class ResourceAccess(ApiAccess):
    """Auth0ClientSecrets, Auth0Tenants, ClusterAuth0Tenants and namespace labels."""

    async def get_client_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Auth0ClientSecret object, or ``None`` if it is gone."""
        try:
            with api_errors(f"read Auth0ClientSecret {namespace}/{name}"):
                obj = await self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, _PLURAL, name
                )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    async def list_client_secrets(self, namespace: str) -> list[dict[str, Any]]:
        """Every Auth0ClientSecret in a namespace."""
        with api_errors(f"list Auth0ClientSecrets in {namespace}"):
            result = await self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, _PLURAL
            )
        return [dict(item) for item in result.get("items", [])]

    async def list_client_secrets_in(self, namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every Auth0ClientSecret in the watched namespaces, listed in pages.

        Exact names are listed one by one (namespaced RBAC suffices); patterns
        or all namespaces are one cluster-wide list, filtered like kopf does
        (``!`` excludes).
        """
        patterns = any(set(ns) & set("*?[!") for ns in namespaces)
        found: list[dict[str, Any]] = []
        for namespace in [None] if patterns or not namespaces else list(namespaces):
            found += await self._list_pages(namespace)
        if patterns:
            found = [o for o in found if _in_scope(o["metadata"]["namespace"], namespaces)]
        return found

    async def _list_pages(self, namespace: str | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = {"limit": _LIST_PAGE, **({"_continue": token} if token else {})}
            with api_errors(f"list Auth0ClientSecrets in {namespace or 'all namespaces'}"):
                if namespace is None:
                    result = await self.custom.list_cluster_custom_object(
                        GROUP, VERSION, _PLURAL, **page
                    )
                else:
                    result = await self.custom.list_namespaced_custom_object(
                        GROUP, VERSION, namespace, _PLURAL, **page
                    )
            items += [dict(item) for item in result.get("items", [])]
            token = (result.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def patch_status(
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch ``status``; with ``resource_version`` it is a claim (409: Conflict)."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        with api_errors(f"write the status of {namespace}/{name}"):
            obj = await self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, _PLURAL, name, body, _content_type=_MERGE
            )
        return dict(obj)

    # -- tenants and namespaces --------------------------------------------------------------

    async def get_tenant(self, ref: TenantRef) -> dict[str, Any] | None:
        """The tenant object ``ref`` names, or ``None``."""
        try:
            with api_errors(f"read {ref.kind} {ref.name}"):
                if ref.namespace is None:
                    obj = await self.custom.get_cluster_custom_object(
                        GROUP, VERSION, "clusterauth0tenants", ref.name
                    )
                else:
                    obj = await self.custom.get_namespaced_custom_object(
                        GROUP, VERSION, ref.namespace, "auth0tenants", ref.name
                    )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    async def patch_tenant_status(self, ref: TenantRef, status: dict[str, Any]) -> None:
        """Merge-patch a tenant's status."""
        body = {"status": status}
        with api_errors(f"write the status of {ref.kind} {ref.name}"):
            if ref.namespace is None:
                await self.custom.patch_cluster_custom_object_status(
                    GROUP, VERSION, "clusterauth0tenants", ref.name, body, _content_type=_MERGE
                )
            else:
                await self.custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    ref.namespace,
                    "auth0tenants",
                    ref.name,
                    body,
                    _content_type=_MERGE,
                )

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        """Labels of a namespace (for ``allowedNamespaces.namespaceSelector``)."""
        with api_errors(f"read namespace {namespace}"):
            ns = await self.core.read_namespace(namespace)
        return dict(ns.metadata.labels or {})
