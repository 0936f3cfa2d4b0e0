"""Kubernetes access: custom resources, Secrets, namespaces and Events.

The only module that calls the Kubernetes API (``kubernetes.aio``, never a
blocking client). It speaks in plain dicts and domain errors:
:class:`Conflict` for a failed resourceVersion check, :class:`SecretConflict`
for a Secret this resource does not own. Secret values enter and leave as
:class:`SecretValue`; nothing here logs data.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubernetes.aio import client

from auth0_rotator.model import GROUP, VERSION, TenantRef
from auth0_rotator.schedule import format_time, parse_time
from auth0_rotator.secretvalue import SecretValue

__all__ = [
    "MANAGED_BY",
    "OWNER_ANNOTATION",
    "Conflict",
    "KubeStore",
    "OwnerInfo",
    "SecretConflict",
    "decode_secret",
]

MANAGED_BY = {"app.kubernetes.io/managed-by": "auth0-rotator"}
OWNER_ANNOTATION = "auth0rotator.dev/owner"
OWNER_UID_ANNOTATION = "auth0rotator.dev/owner-uid"
KEYS_ANNOTATION = "auth0rotator.dev/keys"
ROLE_LABEL = "auth0rotator.dev/role"
REVISION_ANNOTATION = "auth0rotator.dev/secret-revision"
_MERGE = "application/merge-patch+json"
_WORKLOADS = {"Deployment": "deployment", "StatefulSet": "stateful_set", "DaemonSet": "daemon_set"}
"""Restartable kinds and their names in the generated AppsV1Api method names."""
_PLURAL = "auth0clientsecrets"
_LIST_PAGE = 500
_EVENT_BACKLOG = 1000
"""Events waiting to be posted; beyond this they are dropped (Events are best effort)."""
_EVENT_HOLD = 1.0
"""Seconds an Event waits at most for rotations in their critical steps (see ``holding_events``)."""
_EVENT_WINDOW = timedelta(minutes=10)
"""A repeat of an identical Event within this window is counted on the first one."""
_EVENT_MEMORY = 4096
"""Recent Events remembered for aggregation (oldest forgotten first)."""


@dataclass
class _SeenEvent:
    name: str
    count: int
    last: datetime


UNREAD: Any = object()
"""``write_owned_secret(existing=UNREAD)``: read the Secret before writing it."""

log = logging.getLogger(__name__)


class Conflict(Exception):
    """A resourceVersion-checked write lost to another writer (HTTP 409)."""


class SecretConflict(Exception):
    """The target Secret exists and belongs to someone else."""

    def __init__(self, namespace: str, name: str, owner: str | None) -> None:
        held = f"it belongs to {owner}" if owner else "it is not managed by auth0-rotator"
        super().__init__(
            f"Secret {namespace}/{name} already exists and {held}; choose another "
            "spec.secretName or delete that Secret"
        )
        self.owner = owner


@dataclass(frozen=True)
class OwnerInfo:
    """The Auth0ClientSecret a Secret belongs to."""

    namespace: str
    name: str
    uid: str

    @property
    def ref(self) -> str:
        """``namespace/name``, the value of the owner annotation."""
        return f"{self.namespace}/{self.name}"

    def owner_reference(self, controller: bool) -> dict[str, Any]:
        """An ownerReference to the Auth0ClientSecret."""
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Auth0ClientSecret",
            "name": self.name,
            "uid": self.uid,
            "controller": controller,
            "blockOwnerDeletion": False,
        }


def decode_secret(secret: dict[str, Any], key: str) -> SecretValue | None:
    """The value of ``key`` in a Secret dict, or ``None`` if absent or empty."""
    raw = (secret.get("data") or {}).get(key)
    if not raw:
        return None
    return SecretValue(base64.b64decode(raw).decode("utf-8", "replace"))


def _in_scope(namespace: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``namespace`` is watched: it matches a pattern and no ``!`` exclusion."""
    included = [p for p in patterns if not p.startswith("!")]
    excluded = [p[1:] for p in patterns if p.startswith("!")]
    return any(fnmatch.fnmatchcase(namespace, p) for p in included) and not any(
        fnmatch.fnmatchcase(namespace, p) for p in excluded
    )


def _encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


_ECHOES_KEPT = 8
"""Own writes remembered per object whose watch events have not been seen (kopf may
merge events, so some never are)."""
_DELETED = "<deleted>"
"""What :meth:`KubeStore.expect_echo` records for an object this process deleted."""


class KubeStore:
    """Reads and writes what the operator manages, through one async API client."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        # The generated API accepts plain dicts for bodies at run time but types
        # them as models; this module speaks dicts, so the APIs are used untyped.
        self.core: Any = client.CoreV1Api(api)
        self.custom: Any = client.CustomObjectsApi(api)
        self.apps: Any = client.AppsV1Api(api)
        self._events: asyncio.Queue[tuple[str, dict[str, Any], float]] = asyncio.Queue(
            _EVENT_BACKLOG
        )
        self._holds = 0
        self._unheld = asyncio.Event()
        self._unheld.set()
        self._recent_events: dict[tuple[Any, ...], _SeenEvent] = {}
        self._last_event_nanos = 0
        self._event_task: asyncio.Task[None] | None = None
        self._echoes: dict[tuple[str, str, str], list[str]] = {}
        # Staging Secrets this process wrote and has not deleted: (namespace, name) -> version.
        self._staging_versions: dict[tuple[str, str], str] = {}

    # -- our own writes, as the watch will show them ------------------------------------------

    def expect_echo(self, kind: str, namespace: str, name: str, resource_version: str) -> None:
        """Note that this process wrote ``resource_version`` of an object, knowing all of it.

        The watch event for that version then needs no reconcile: the writer
        already acted on everything it shows.
        """
        versions = self._echoes.setdefault((kind, namespace, name), [])
        versions.append(resource_version)
        del versions[:-_ECHOES_KEPT]

    def is_echo(self, kind: str, namespace: str, name: str, resource_version: str | None) -> bool:
        """Whether a watch event shows exactly one of this process's recent writes of an object.

        Each expected version answers ``True`` once; any other version (someone
        else's change, or our write overtaken by one) answers ``False``.
        """
        key = (kind, namespace, name)
        versions = self._echoes.get(key)
        if resource_version is None or not versions or resource_version not in versions:
            return False
        versions.remove(resource_version)
        if not versions:
            del self._echoes[key]
        return True

    def is_deletion_echo(self, kind: str, namespace: str, name: str) -> bool:
        """Whether a DELETED event is for an object this process just deleted itself."""
        return _DELETED in self._echoes.pop((kind, namespace, name), [])

    def _plain(self, obj: Any) -> dict[str, Any]:
        sanitize: Any = self.api.sanitize_for_serialization
        data: dict[str, Any] = sanitize(obj)
        return data

    # -- Auth0ClientSecret ---------------------------------------------------------------

    async def get_client_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Auth0ClientSecret object, or ``None`` if it is gone."""
        try:
            obj = await self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, _PLURAL, name
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    async def list_client_secrets(self, namespace: str) -> list[dict[str, Any]]:
        """Every Auth0ClientSecret in a namespace."""
        result = await self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, _PLURAL)
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
        try:
            obj = await self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, _PLURAL, name, body, _content_type=_MERGE
            )
        except client.ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{namespace}/{name} changed since it was read") from None
            raise
        return dict(obj)

    # -- tenants ---------------------------------------------------------------------------

    async def get_tenant(self, ref: TenantRef) -> dict[str, Any] | None:
        """The tenant object ``ref`` names, or ``None``."""
        try:
            if ref.namespace is None:
                obj = await self.custom.get_cluster_custom_object(
                    GROUP, VERSION, "clusterauth0tenants", ref.name
                )
            else:
                obj = await self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, ref.namespace, "auth0tenants", ref.name
                )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    async def patch_tenant_status(self, ref: TenantRef, status: dict[str, Any]) -> None:
        """Merge-patch a tenant's status."""
        body = {"status": status}
        if ref.namespace is None:
            await self.custom.patch_cluster_custom_object_status(
                GROUP, VERSION, "clusterauth0tenants", ref.name, body, _content_type=_MERGE
            )
        else:
            await self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, ref.namespace, "auth0tenants", ref.name, body, _content_type=_MERGE
            )

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        """Labels of a namespace (for ``allowedNamespaces.namespaceSelector``)."""
        ns = await self.core.read_namespace(namespace)
        return dict(ns.metadata.labels or {})

    # -- Secrets -----------------------------------------------------------------------------

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Secret as a dict, or ``None`` if it does not exist."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self._plain(secret)

    @staticmethod
    def owner_of(secret: dict[str, Any]) -> str | None:
        """The ``namespace/name`` a managed Secret belongs to, if it is managed."""
        meta = secret.get("metadata") or {}
        labels = meta.get("labels") or {}
        if not MANAGED_BY.items() <= labels.items():
            return None
        owner = (meta.get("annotations") or {}).get(OWNER_ANNOTATION)
        return str(owner) if owner else None

    @classmethod
    def is_owned_by(cls, secret: dict[str, Any], owner: OwnerInfo, role: str | None = None) -> bool:
        """Whether ``secret`` carries ``owner``'s label and annotation (and uid when set).

        With ``role`` its role label must say so too (``staging``: the uid is required).
        """
        if cls.owner_of(secret) != owner.ref:
            return False
        meta = secret.get("metadata") or {}
        uid = (meta.get("annotations") or {}).get(OWNER_UID_ANNOTATION)
        if role is not None and (
            (meta.get("labels") or {}).get(ROLE_LABEL) != role or uid != owner.uid
        ):
            return False
        return uid in (None, owner.uid)

    async def write_owned_secret(
        self,
        owner: OwnerInfo,
        name: str,
        values: dict[str, SecretValue | str],
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
        owner_reference: dict[str, Any] | None,
        role: str = "target",
        existing: dict[str, Any] | None = UNREAD,
        create_only: bool = False,
    ) -> str:
        """Create or update a Secret ``owner`` manages; return its new resourceVersion.

        Keys this resource wrote before and no longer writes are removed; other
        keys are left alone. A Secret owned by anyone else raises
        :class:`SecretConflict` and is not touched. ``existing`` saves the read
        when the caller has the Secret already (``None``: believed absent); the
        write is resourceVersion-checked against it either way. With
        ``create_only`` an existing Secret is never touched: :class:`Conflict`.
        """
        data = {
            k: _encode(v.reveal() if isinstance(v, SecretValue) else v) for k, v in values.items()
        }
        meta_labels = {**labels, **MANAGED_BY, ROLE_LABEL: role}
        meta_annotations = {
            **annotations,
            OWNER_ANNOTATION: owner.ref,
            OWNER_UID_ANNOTATION: owner.uid,
            KEYS_ANNOTATION: ",".join(sorted(values)),
        }
        if create_only:
            existing = None
        assumed = existing is not UNREAD
        if not assumed:
            existing = await self.read_secret(owner.namespace, name)
        if existing is None:
            body: dict[str, Any] = {
                "metadata": {
                    "name": name,
                    "namespace": owner.namespace,
                    "labels": meta_labels,
                    "annotations": meta_annotations,
                },
                "type": "Opaque",
                "data": data,
            }
            if owner_reference:
                body["metadata"]["ownerReferences"] = [owner_reference]
            try:
                created = await self.core.create_namespaced_secret(owner.namespace, body)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
                if create_only:
                    raise Conflict(f"Secret {owner.namespace}/{name} exists already") from None
                # Only a guess was wrong (e.g. a leftover): read it and update it.
                existing = await self.read_secret(owner.namespace, name) if assumed else None
                if existing is None:
                    raise Conflict(f"Secret {owner.namespace}/{name} changed meanwhile") from None
            else:
                version = str(created.metadata.resource_version)
                self._wrote_secret(owner.namespace, name, version, role)
                return version
        if not self.is_owned_by(existing, owner):
            raise SecretConflict(owner.namespace, name, self.owner_of(existing))
        meta = existing.get("metadata") or {}
        previous = set(
            filter(None, ((meta.get("annotations") or {}).get(KEYS_ANNOTATION) or "").split(","))
        )
        patch_data: dict[str, str | None] = {k: None for k in previous - set(values)}
        patch_data.update(data)
        refs = [r for r in (meta.get("ownerReferences") or []) if r.get("uid") != owner.uid]
        if owner_reference:
            refs.append(owner_reference)
        patch = {
            "metadata": {
                "resourceVersion": meta.get("resourceVersion"),
                "labels": meta_labels,
                "annotations": meta_annotations,
                "ownerReferences": refs,
            },
            "data": patch_data,
        }
        try:
            updated = await self.core.patch_namespaced_secret(
                name, owner.namespace, patch, _content_type=_MERGE
            )
        except client.ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"Secret {owner.namespace}/{name} changed meanwhile") from None
            raise
        # resourceVersion-checked: the new version holds nothing but this write.
        version = str(updated.metadata.resource_version)
        self._wrote_secret(owner.namespace, name, version, role)
        return version

    def _wrote_secret(self, namespace: str, name: str, version: str, role: str) -> None:
        self.expect_echo("secrets", namespace, name, version)
        if role == "staging":
            self._staging_versions[(namespace, name)] = version

    async def delete_owned_secret(
        self, owner: OwnerInfo, name: str, *, only_as_written: bool = False
    ) -> None:
        """Delete a Secret if (and only if) ``owner`` manages it.

        A staging Secret this process wrote is deleted on the condition that it is
        still the version written (no read needed); anything else is read first.
        With ``only_as_written`` nothing but that version is ever deleted: a
        Secret someone wrote since is left alone.
        """
        known = self._staging_versions.pop((owner.namespace, name), None)
        if known is not None:
            try:
                await self.core.delete_namespaced_secret(
                    name, owner.namespace, body={"preconditions": {"resourceVersion": known}}
                )
            except client.ApiException as exc:
                if exc.status == 404:
                    return
                if exc.status != 409:
                    raise
                # Changed since we wrote it: decide from what it is now.
            else:
                self.expect_echo("secrets", owner.namespace, name, _DELETED)
                return
        if only_as_written:
            return
        existing = await self.read_secret(owner.namespace, name)
        if existing is None or not self.is_owned_by(existing, owner):
            return
        try:
            await self.core.delete_namespaced_secret(name, owner.namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        else:
            self.expect_echo("secrets", owner.namespace, name, _DELETED)

    # -- workloads ---------------------------------------------------------------------------

    async def get_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A Deployment, StatefulSet or DaemonSet as a dict, or ``None``."""
        read = getattr(self.apps, f"read_namespaced_{_WORKLOADS[kind]}")
        try:
            obj = await read(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {"kind": kind, "apiVersion": "apps/v1", **self._plain(obj)}

    async def list_workloads(
        self, kind: str, namespace: str, label_selector: str
    ) -> list[dict[str, Any]]:
        """Workloads of ``kind`` matching a label selector string."""
        list_fn = getattr(self.apps, f"list_namespaced_{_WORKLOADS[kind]}")
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
        try:
            await patch_fn(
                name, namespace, body, _content_type="application/strategic-merge-patch+json"
            )
        except client.ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{kind} {namespace}/{name} changed meanwhile") from None
            raise

    # -- Events ------------------------------------------------------------------------------

    async def post_event(
        self, obj: dict[str, Any], event_type: str, reason: str, message: str, now: datetime
    ) -> None:
        """Record a core/v1 Event about ``obj``, in the background and in order.

        Events are best effort: posting never delays a rotation, and a failed or
        (beyond a backlog of 1000) dropped Event never fails one.
        """
        meta = obj.get("metadata") or {}
        stamp = format_time(now)
        # Named like client-go's recorder: <object>.<hex nanoseconds>. Names sort in
        # posting order, so `kubectl describe` (which sorts by lastTimestamp, to the
        # second) keeps same-second Events in the order they happened.
        nanos = max(int(now.timestamp() * 1e9), self._last_event_nanos + 1)
        self._last_event_nanos = nanos
        body = {
            "metadata": {
                "name": f"{meta.get('name')}.{nanos:x}",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": "auth0-rotator"},
            "reportingComponent": "auth0-rotator",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        if self._event_task is None:
            self._event_task = asyncio.create_task(self._post_events())
        try:
            self._events.put_nowait((str(meta.get("namespace")), body, time.monotonic()))
        except asyncio.QueueFull:
            log.warning("event backlog full; dropped Event %s for %s", reason, meta.get("name"))

    async def _post_event(self, namespace: str, body: dict[str, Any]) -> None:
        """Create the Event, or count a repeat of a recent identical one (aggregation).

        The same type, reason and message about the same object within
        ``_EVENT_WINDOW`` bumps ``count`` and ``lastTimestamp`` of the Event
        already posted, as client-go's EventCorrelator does, instead of adding one.
        """
        involved = body["involvedObject"]
        key = (namespace, involved.get("uid"), body["type"], body["reason"], body["message"])
        seen = self._recent_events.pop(key, None)
        stamp = parse_time(body["lastTimestamp"])
        if seen is not None and stamp is not None and stamp - seen.last < _EVENT_WINDOW:
            count = seen.count + 1
            try:
                await self.core.patch_namespaced_event(
                    seen.name, namespace, {"count": count, "lastTimestamp": body["lastTimestamp"]}
                )
                self._recent_events[key] = _SeenEvent(seen.name, count, stamp)
                return
            except client.ApiException as exc:
                if exc.status != 404:  # gone (expired): post a new one below
                    raise
        created = await self.core.create_namespaced_event(namespace, body)
        name = getattr(getattr(created, "metadata", None), "name", None) or body["metadata"]["name"]
        if stamp is not None:
            self._recent_events[key] = _SeenEvent(str(name), 1, stamp)
            while len(self._recent_events) > _EVENT_MEMORY:
                self._recent_events.pop(next(iter(self._recent_events)))

    @contextlib.contextmanager
    def holding_events(self) -> Iterator[None]:
        """Post no Event while the block runs (each waits ``_EVENT_HOLD`` seconds at most).

        A rotation's steps from claim to restart wait on the API server one after
        another; the Events about them can wait until after.
        """
        self._holds += 1
        self._unheld.clear()
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                self._unheld.set()

    async def _post_events(self) -> None:
        while True:
            namespace, body, queued = await self._events.get()
            held_for = queued + _EVENT_HOLD - time.monotonic()
            if self._holds and held_for > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(held_for):  # not wait_for: see controller
                        await self._unheld.wait()
            try:
                await self._post_event(namespace, body)
            except client.ApiException as exc:
                log.debug("Event %s not posted: HTTP %s", body["reason"], exc.status)
            except Exception as exc:  # best effort: never the rotation's problem
                log.debug("Event %s not posted: %s", body["reason"], type(exc).__name__)
            finally:
                self._events.task_done()

    async def aclose(self) -> None:
        """Post the Events still queued (for up to 5 seconds), then stop."""
        if self._event_task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self._events.join()
        self._event_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._event_task
        self._event_task = None
