"""What the demo's timed stories (``--announce``, ``--key-pair``) share."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from kubernetes import client, config, watch

from auth0_rotator_dev.devcluster.narration import DemoError

if TYPE_CHECKING:
    from auth0_rotator_dev.devcluster.demo import Demo

__all__ = ["PhaseFollower", "Story"]

GROUP, VERSION, PLURAL = "auth0rotator.dev", "v1alpha1", "auth0clientsecrets"


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

    def _object(self) -> dict[str, Any]:
        obj: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.resource
        )
        found: dict[str, Any] = obj
        return found

    def _status(self) -> dict[str, Any]:
        status: dict[str, Any] = self._object().get("status") or {}
        return status

    def _follow(self) -> PhaseFollower:
        """Start watching the resource's journal phases from now on."""
        return PhaseFollower(self, str(self._object()["metadata"]["resourceVersion"]))

    def _status_and_phases(self, follower: PhaseFollower) -> tuple[dict[str, Any], list[str]]:
        """The status now, and every phase persisted up to it that was not yet returned."""
        obj = self._object()
        phases = follower.phases_until(str(obj["metadata"]["resourceVersion"]))
        status: dict[str, Any] = obj.get("status") or {}
        return status, phases


class PhaseFollower:
    """Every journal phase the operator persists, in order, from a watch on the resource.

    A poll misses a phase that lasts less than its interval (``Registered`` of a
    ``KeyPair`` rotation often does); every status write is a watch event.
    """

    def __init__(self, story: Story, since: str) -> None:
        """Watch ``story``'s resource from resourceVersion ``since``, in a thread."""
        self._events: queue.Queue[tuple[str, str]] = queue.Queue()
        self._watch = watch.Watch()
        self._api = config.new_client_from_config(config_file=str(story.demo.plane.kubeconfig))
        self._thread = threading.Thread(
            target=self._run, args=(story, since), name="phase-follower", daemon=True
        )
        self._last, self._seen = "", since
        self._stopped, self._failed = False, ""
        self._thread.start()

    def _run(self, story: Story, since: str) -> None:
        try:
            self._stream(story, since)
        except Exception as error:  # reported by the next phases_until
            if not self._stopped:
                self._failed = f"{type(error).__name__}: {error}"
        finally:
            self._events.put(("", ""))

    def _stream(self, story: Story, since: str) -> None:
        stream = self._watch.stream(
            client.CustomObjectsApi(self._api).list_namespaced_custom_object,
            GROUP,
            VERSION,
            story.namespace,
            PLURAL,
            field_selector=f"metadata.name={story.resource}",
            resource_version=since,
            timeout_seconds=300,
        )
        for event in stream:
            obj = event["object"]
            phase = ((obj.get("status") or {}).get("rotation") or {}).get("phase", "")
            self._events.put((str(obj["metadata"]["resourceVersion"]), phase))

    def phases_until(self, resource_version: str, timeout: float = 10.0) -> list[str]:
        """The phases persisted up to the write ``resource_version``, each change once.

        Waits (at most ``timeout``) for the watch to deliver that write: a status
        read just now is never ahead of the phases printed.
        """
        found: list[str] = []
        if resource_version == self._seen:
            return found
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen, phase = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return found
            if not seen:
                raise DemoError(f"the watch on the resource ended: {self._failed or 'timed out'}")
            if phase and phase != self._last:
                found.append(phase)
            self._last, self._seen = phase, seen
            if seen == resource_version:
                return found

    def close(self) -> None:
        """Stop the watch."""
        self._stopped = True
        self._watch.stop()
        self._api.close()
