"""Restart targets: Deployments, StatefulSets and DaemonSets, read and restarted."""

from __future__ import annotations

from typing import Any

from auth0_rotator.kube._base import ApiAccess
from auth0_rotator.kube._errors import KubeError, api_errors

__all__ = ["WorkloadAccess"]

_WORKLOADS = {"Deployment": "deployment", "StatefulSet": "stateful_set", "DaemonSet": "daemon_set"}
"""Restartable kinds and their names in the generated AppsV1Api method names."""


class WorkloadAccess(ApiAccess):
    """Workloads by name or label selector, and their pod-template restart patch."""

    async def get_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A Deployment, StatefulSet or DaemonSet as a dict, or ``None``."""
        read = getattr(self.apps, f"read_namespaced_{_WORKLOADS[kind]}")
        try:
            with api_errors(f"read {kind} {namespace}/{name}"):
                obj = await read(name, namespace)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return {"kind": kind, "apiVersion": "apps/v1", **self._plain(obj)}

    async def list_workloads(
        self, kind: str, namespace: str, label_selector: str
    ) -> list[dict[str, Any]]:
        """Workloads of ``kind`` matching a label selector string."""
        list_fn = getattr(self.apps, f"list_namespaced_{_WORKLOADS[kind]}")
        with api_errors(f"list {kind}s in {namespace}"):
            result = await list_fn(namespace, label_selector=label_selector)
        return [{"kind": kind, "apiVersion": "apps/v1", **self._plain(o)} for o in result.items]

    async def restart_workload(
        self,
        kind: str,
        namespace: str,
        name: str,
        annotations: dict[str, str],
        resource_version: str | None = None,
    ) -> None:
        """Set pod-template annotations with a strategic-merge patch (a rolling restart).

        With ``resource_version`` the patch only applies to that version (409: Conflict).
        """
        patch_fn = getattr(self.apps, f"patch_namespaced_{_WORKLOADS[kind]}")
        body: dict[str, Any] = {"spec": {"template": {"metadata": {"annotations": annotations}}}}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        with api_errors(f"restart {kind} {namespace}/{name}"):
            await patch_fn(
                name, namespace, body, _content_type="application/strategic-merge-patch+json"
            )
