"""kopf handlers: thin adapters between watch events and the controller.

kopf supplies the watch streams, login, liveness and lifecycle; every handler
here only records which resource needs attention. Decisions and writes happen
in :mod:`auth0_rotator.engine`, driven by :mod:`auth0_rotator.controller`.
Handlers are registered on a registry of our own (not kopf's global one), so
several operators can run in one test process.

Only ``on.event`` handlers are used: kopf then keeps no diff-base or progress
annotations and adds no finalizers to anybody's objects.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

from auth0_rotator.access import DomainAllowList
from auth0_rotator.claims import ClientIndex
from auth0_rotator.controller import Controller
from auth0_rotator.engine import RotationEngine
from auth0_rotator.kube import KubeStore
from auth0_rotator.labels import MANAGED_BY, MANAGED_BY_SELECTOR, OWNER_ANNOTATION, PREFIX
from auth0_rotator.metrics import Metrics
from auth0_rotator.model import GROUP, VERSION, TenantRef
from auth0_rotator.settings import EngineSettings
from auth0_rotator.tenant_status import TenantStatus
from auth0_rotator.tenants import TenantRegistry

__all__ = [
    "PERSISTENCE_PREFIX",
    "OperatorContext",
    "cluster_configuration",
    "owner_key",
    "registry",
]

log = logging.getLogger(__name__)

PERSISTENCE_PREFIX = PREFIX
"""Prefix of kopf's own bookkeeping annotations; fixed early, changing it needs a migration."""

registry = kopf.OperatorRegistry()

SECRETS = ("v1", "secrets")
WORKLOADS = (
    ("Deployment", "deployments"),
    ("StatefulSet", "statefulsets"),
    ("DaemonSet", "daemonsets"),
)
"""Restart targets: their watch events end the wait for a rollout (no polling)."""
LIST_CHUNK = 500
"""Objects per page of kopf's initial lists (``limit``/``continue``)."""


@dataclass
class OperatorContext:
    """What the handlers share; built at startup, kept in kopf's ``memo``."""

    engine_settings: EngineSettings = field(default_factory=EngineSettings)
    workers: int = 4
    extra_ca_file: str | None = None
    """A CA bundle trusted for every tenant in addition to the system CAs (local fakes)."""
    metrics: Metrics | None = None
    """Where handlers, engine and Auth0 clients report (the runtime serves it)."""
    scan_cluster: bool = True
    """Let kopf watch CRDs and namespaces (needed for namespace patterns like ``team-*``;
    needs RBAC to list/watch them, which the chart does not grant)."""
    namespaces: tuple[str, ...] = ()
    """Watched namespaces (names or patterns); empty: all."""
    allowed_domains: DomainAllowList = field(default_factory=DomainAllowList)
    """Tenant domains credentials may be sent to."""
    auth0_deadline: float = 30.0
    """Seconds for one whole Auth0 request."""
    api: aio_client.ApiClient | None = None
    store: KubeStore | None = None
    tenants: TenantRegistry | None = None
    tenant_status: TenantStatus | None = None
    engine: RotationEngine | None = None
    controller: Controller | None = None


def _context(memo: Any) -> OperatorContext:
    ctx = memo.get("context") if hasattr(memo, "get") else None
    if not isinstance(ctx, OperatorContext):
        raise kopf.PermanentError("operator context missing from memo")
    return ctx


def _kubeconfig_path() -> str | None:
    """``$KUBECONFIG`` read now (the kubernetes library reads it once, at import)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        return None  # in-cluster service account
    return os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())


async def cluster_configuration() -> aio_client.Configuration:
    """Cluster access from the kubeconfig or the in-cluster service account."""
    configuration = aio_client.Configuration()
    path = _kubeconfig_path()
    if path is None:
        aio_config.load_incluster_config(client_configuration=configuration)
    else:
        await aio_config.load_kube_config(config_file=path, client_configuration=configuration)
    # Like kopf's own watch connections: no $HTTPS_PROXY or ~/.netrc lookups for the
    # Kubernetes API (a kubeconfig's proxy-url still applies). With trust_env, aiohttp
    # reads both in a thread on every request: a third of the CPU at 10,000 resources.
    configuration.client_session_kwargs = {"trust_env": False}
    return configuration


@kopf.on.login(registry=registry)
async def login(**_: Any) -> kopf.ConnectionInfo:
    """The one source of credentials for kopf's watches: the same config as our client."""
    configuration = await cluster_configuration()
    token = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get(
        "BearerToken"
    )
    scheme, _sep, value = (token or "").partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=value or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        default_namespace=None,
    )


@kopf.on.startup(registry=registry)
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    """Configure kopf and start the engine and its work queue."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=PERSISTENCE_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PERSISTENCE_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PERSISTENCE_PREFIX}/finalizer"
    # Events are posted by the engine; kopf's per-log-line events would flood.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    # Only our own Secrets reach the process (filtered by the API server, not here),
    # and every initial list comes in pages.
    settings.watching.label_selectors[SECRETS] = MANAGED_BY_SELECTOR
    settings.watching.chunk_size = LIST_CHUNK
    ctx = _context(memo)
    settings.scanning.disabled = not ctx.scan_cluster
    ctx.api = aio_client.ApiClient(await cluster_configuration())
    ctx.store = KubeStore(ctx.api)
    metrics = ctx.metrics
    claims = ClientIndex()
    # Before any reconcile: who manages which client must be known for all of them.
    for body in await ctx.store.list_client_secrets_in(ctx.namespaces):
        claims.update(body)
    ctx.tenants = TenantRegistry(
        ctx.store,
        extra_ca_file=ctx.extra_ca_file,
        observer=metrics.auth0_request if metrics is not None else None,
        allowed_domains=ctx.allowed_domains,
        claims=claims,
        request_deadline=ctx.auth0_deadline,
    )
    if metrics is not None:
        metrics.budgets = ctx.tenants.budgets
    ctx.engine = RotationEngine(ctx.store, ctx.tenants, ctx.engine_settings, metrics)
    ctx.controller = controller = Controller(
        ctx.engine.reconcile,
        ctx.engine_settings.clock,
        ctx.workers,
        deadline=ctx.engine_settings.reconcile_deadline,
        partition=ctx.engine.partition,
    )
    ctx.tenant_status = TenantStatus(
        ctx.tenants, ctx.store, ctx.engine_settings.clock, controller.enqueue
    )
    if metrics is not None:
        metrics.work = lambda: (controller.reconciles, controller.queued)
    await ctx.controller.start()
    log.info("auth0-rotator started as %s", ctx.engine_settings.identity)


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: Any, **_: Any) -> None:
    """Stop the work queue and close connections."""
    ctx = _context(memo)
    if ctx.controller is not None:
        await ctx.controller.stop()
    if ctx.tenants is not None:
        await ctx.tenants.aclose()
    if ctx.store is not None:
        await ctx.store.aclose()
    if ctx.api is not None:
        await ctx.api.close()


@kopf.on.event(GROUP, VERSION, "auth0clientsecrets", registry=registry)
async def client_secret_event(type: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """Any change of an Auth0ClientSecret: reconcile it."""
    ctx = _context(memo)
    if ctx.controller is None:
        return
    key = (body.metadata.namespace or "", body.metadata.name or "")
    ref = (body.spec.get("tenantRef") or {}) if body.spec else {}
    kind = ref.get("kind") or "Auth0Tenant"
    tenant_key = TenantRef(
        kind, ref.get("name") or "default", key[0] if kind == "Auth0Tenant" else None
    ).key
    claims = ctx.tenants.claims if ctx.tenants is not None else None
    users = ctx.tenant_status
    if type == "DELETED":
        ctx.controller.forget(key)
        if ctx.engine is not None:
            ctx.engine.forget(key)
        if users is not None:
            users.drop(tenant_key, key)
        if claims is not None:
            claims.remove(key)
        if ctx.store is not None:
            ctx.store.is_deletion_echo("auth0clientsecrets", *key)  # forget what was expected
        if ctx.metrics is not None:
            ctx.metrics.resource_gone(*key)
        return
    if ctx.metrics is not None:
        ctx.metrics.resource_seen(*key, dict(body.status or {}))
    if users is not None:
        users.use(tenant_key, key)
    if claims is not None:
        claims.update(dict(body))
    # Our own status write needs no reconcile: the one that made it knew all of this.
    ctx.controller.enqueue(key, _echo_check(ctx, "auth0clientsecrets", key, body), seen=dict(body))


def owner_key(namespace: str, annotation: str | None) -> tuple[str, str] | None:
    """The Auth0ClientSecret a managed Secret in ``namespace`` names, if it is in ``namespace``."""
    owner_namespace, sep, name = (annotation or "").partition("/")
    if not sep or not name or owner_namespace != namespace:
        return None
    return namespace, name


@kopf.on.event("v1", "secrets", labels=MANAGED_BY, registry=registry)
async def managed_secret_event(type: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A managed Secret changed or vanished: its owner checks for drift.

    The owner is looked for in the Secret's own namespace only: whoever may
    write a Secret somewhere must not make the operator reconcile resources of
    another namespace by naming them in its annotation.
    """
    ctx = _context(memo)
    where = (body.metadata.namespace or "", body.metadata.name or "")
    owner = owner_key(where[0], (body.metadata.annotations or {}).get(OWNER_ANNOTATION))
    if ctx.controller is None or ctx.store is None or owner is None:
        return
    store = ctx.store
    namespace, name = owner
    if type == "DELETED":
        # Deleted by us (a finished rotation's staging Secret), or drift to repair.
        ctx.controller.enqueue(
            (namespace, name), functools.partial(store.is_deletion_echo, "secrets", *where)
        )
    else:
        ctx.controller.enqueue((namespace, name), _echo_check(ctx, "secrets", where, body))


def _echo_check(
    ctx: OperatorContext, kind: str, where: tuple[str, str], body: kopf.Body
) -> Callable[[], bool] | None:
    """Whether the event showing ``body`` is the echo of our own write (asked later)."""
    if ctx.store is None:
        return None
    version = body.metadata.get("resourceVersion")
    return functools.partial(ctx.store.is_echo, kind, *where, version)


def _workload_event(kind: str) -> Callable[..., Any]:
    async def handler(body: kopf.Body, memo: Any, **_: Any) -> None:
        ctx = _context(memo)
        if ctx.engine is None or ctx.controller is None:
            return
        workload = (body.metadata.namespace or "", kind, body.metadata.name or "")
        for key in ctx.engine.restarter.waiters.waiting_for(workload):
            ctx.controller.enqueue(key)

    handler.__doc__ = f"A {kind} changed: wake the resources waiting for its rollout."
    handler.__name__ = handler.__qualname__ = f"{kind.lower()}_event"
    return handler


for _kind, _plural in WORKLOADS:
    # Read-only: on.event keeps no annotations on anybody's workloads.
    kopf.on.event("apps", "v1", _plural, registry=registry)(_workload_event(_kind))


@kopf.on.event(GROUP, VERSION, "auth0tenants", registry=registry)
async def tenant_event(type: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A namespaced tenant changed: report its readiness, reconcile its users."""
    ref = TenantRef("Auth0Tenant", body.metadata.name or "", body.metadata.namespace)
    ctx = _context(memo)
    if ctx.tenant_status is not None:
        await ctx.tenant_status.on_event(ref, type, dict(body))


@kopf.on.event(GROUP, VERSION, "clusterauth0tenants", registry=registry)
async def cluster_tenant_event(type: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A cluster tenant changed: report its readiness, reconcile its users."""
    ref = TenantRef("ClusterAuth0Tenant", body.metadata.name or "", None)
    ctx = _context(memo)
    if ctx.tenant_status is not None:
        await ctx.tenant_status.on_event(ref, type, dict(body))
