"""What the demo's timed stories (``--announce``, ``--key-pair``) share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubernetes import client, config

if TYPE_CHECKING:
    from auth0_rotator_dev.devcluster.demo import Demo

__all__ = ["Story"]


class Story:
    """A part of the demo on its running pieces, about one ``Auth0ClientSecret``."""

    resource = ""
    """The ``Auth0ClientSecret`` the story follows."""

    def __init__(self, demo: Demo, namespace: str) -> None:
        """Kubernetes clients on the demo's control plane."""
        self.demo, self.say, self.namespace = demo, demo.say, namespace
        self.api = config.new_client_from_config(config_file=str(demo.plane.kubeconfig))
        self.custom, self.core = client.CustomObjectsApi(self.api), client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def close(self) -> None:
        """Close the API client."""
        self.api.close()

    def run(self) -> None:
        """Tell the story."""
        raise NotImplementedError

    def _status(self) -> dict[str, Any]:
        obj: Any = self.custom.get_namespaced_custom_object(
            "auth0rotator.dev", "v1alpha1", self.namespace, "auth0clientsecrets", self.resource
        )
        status: dict[str, Any] = obj.get("status") or {}
        return status
