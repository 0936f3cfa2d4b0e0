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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

from auth0_rotator.auth0 import Auth0Error
from auth0_rotator.controller import Controller
from auth0_rotator.engine import EngineSettings, RotationEngine
from auth0_rotator.kube import MANAGED_BY, OWNER_ANNOTATION, KubeStore
from auth0_rotator.metrics import Metrics
from auth0_rotator.model import GROUP, VERSION, SpecError, TenantRef, TenantSpec
from auth0_rotator.schedule import format_time, parse_time
from auth0_rotator.tenants import TenantProblem, TenantRegistry

__all__ = ["PERSISTENCE_PREFIX", "OperatorContext", "cluster_configuration", "registry"]

log = logging.getLogger(__name__)

PERSISTENCE_PREFIX = "auth0rotator.dev"
"""Prefix of kopf's own bookkeeping annotations; fixed early, changing it needs a migration."""

registry = kopf.OperatorRegistry()


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
    api: aio_client.ApiClient | None = None
    store: KubeStore | None = None
    tenants: TenantRegistry | None = None
    engine: RotationEngine | None = None
    controller: Controller | None = None
    tenant_users: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    tenant_seen: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """Per tenant: (generation, Ready status) when its users were last reconciled for it."""


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
    ctx = _context(memo)
    settings.scanning.disabled = not ctx.scan_cluster
    ctx.api = aio_client.ApiClient(await cluster_configuration())
    ctx.store = KubeStore(ctx.api)
    metrics = ctx.metrics
    ctx.tenants = TenantRegistry(
        ctx.store,
        extra_ca_file=ctx.extra_ca_file,
        observer=metrics.auth0_request if metrics is not None else None,
    )
    if metrics is not None:
        metrics.budgets = ctx.tenants.budgets
    ctx.engine = RotationEngine(ctx.store, ctx.tenants, ctx.engine_settings, metrics)
    ctx.controller = controller = Controller(
        ctx.engine.reconcile, ctx.engine_settings.clock, ctx.workers
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
    if type == "DELETED":
        ctx.controller.forget(key)
        ctx.tenant_users.get(tenant_key, set()).discard(key)
        if ctx.store is not None:
            ctx.store.is_deletion_echo("auth0clientsecrets", *key)  # forget what was expected
        if ctx.metrics is not None:
            ctx.metrics.resource_gone(*key)
        return
    if ctx.metrics is not None:
        ctx.metrics.resource_seen(*key, dict(body.status or {}))
    ctx.tenant_users.setdefault(tenant_key, set()).add(key)
    # Our own status write needs no reconcile: the one that made it knew all of this.
    ctx.controller.enqueue(key, _echo_check(ctx, "auth0clientsecrets", key, body), seen=dict(body))


@kopf.on.event("v1", "secrets", labels=MANAGED_BY, registry=registry)
async def managed_secret_event(type: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A managed Secret changed or vanished: its owner checks for drift."""
    ctx = _context(memo)
    owner = (body.metadata.annotations or {}).get(OWNER_ANNOTATION)
    if ctx.controller is None or ctx.store is None or not owner or "/" not in owner:
        return
    where = (body.metadata.namespace or "", body.metadata.name or "")
    store = ctx.store
    namespace, name = owner.split("/", 1)
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


async def _tenant_event(
    ref: TenantRef, event_type: str, body: dict[str, Any], ctx: OperatorContext
) -> None:
    if ctx.controller is None or ctx.tenants is None or ctx.store is None:
        return
    if event_type != "DELETED":
        # Before its users are queued: they resolve the tenant from this body.
        ctx.tenants.observe(ref, body)
    # Users depend on the tenant's spec and readiness, not on the rest of its status
    # (our own writes of it, such as tokenExpiresAt, must not reconcile them all).
    conditions = (body.get("status") or {}).get("conditions") or []
    seen = (
        (body.get("metadata") or {}).get("generation"),
        next((c.get("status") for c in conditions if c.get("type") == "Ready"), None),
    )
    if event_type != "MODIFIED" or ctx.tenant_seen.get(ref.key) != seen:
        for key in sorted(ctx.tenant_users.get(ref.key, set())):
            ctx.controller.enqueue(key)
    ctx.tenant_seen[ref.key] = seen
    if event_type == "DELETED":
        ctx.tenant_seen.pop(ref.key, None)
        ctx.tenants.forget(ref)
        return
    await _report_tenant(ref, body, ctx)


async def _report_tenant(ref: TenantRef, body: dict[str, Any], ctx: OperatorContext) -> None:
    """Set the tenant's Ready condition from a real token request (when it changes)."""
    assert ctx.tenants is not None and ctx.store is not None  # noqa: S101 - set at startup
    status, reason, message, expires = (
        "True",
        "TokenObtained",
        "a management token was obtained",
        None,
    )
    credentials: str | None = None
    try:
        tenant = TenantSpec.parse(ref, body)
        auth0 = await ctx.tenants.client(tenant)
        credentials = ctx.tenants.credentials_version(tenant)
        if _still_ready(body, credentials, ctx.engine_settings.clock()):
            log.info("%s is Ready with these credentials; no token requested", ref.key)
            return
        await auth0.tokens.get()
        if auth0.tokens.expires_at is not None:
            remaining = auth0.tokens.expires_at - time.monotonic()
            expires = format_time(ctx.engine_settings.clock() + timedelta(seconds=remaining))
    except TenantProblem as exc:
        status, reason, message = "False", exc.reason, exc.message
    except (SpecError, KeyError) as exc:
        status, reason, message = "False", "InvalidTenant", str(exc)
    except Auth0Error as exc:
        status, reason, message = "False", exc.reason, exc.message
    recorded = body.get("status") or {}
    old: dict[str, Any] = next(
        (c for c in recorded.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    if status == "True":
        # Only a fresh token proves these credentials: record what it proved.
        fresh = expires != recorded.get("tokenExpiresAt") or credentials != recorded.get(
            "credentialsVersion"
        )
    else:
        fresh = False
    if not fresh and (old.get("status"), old.get("reason"), old.get("message")) == (
        status,
        reason,
        message,
    ):
        return
    now = format_time(ctx.engine_settings.clock())
    await ctx.store.patch_tenant_status(
        ref,
        {
            "observedGeneration": (body.get("metadata") or {}).get("generation"),
            "conditions": [
                {
                    "type": "Ready",
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": (
                        old.get("lastTransitionTime") or now if old.get("status") == status else now
                    ),
                }
            ],
            "tokenExpiresAt": expires,
            "credentialsVersion": credentials if status == "True" else None,
        },
    )


_TOKEN_MARGIN = timedelta(minutes=10)


def _still_ready(body: dict[str, Any], credentials: str | None, now: datetime) -> bool:
    """Whether the tenant's status already proves these credentials (no token request needed).

    True when Ready is True for this generation, with this resourceVersion of the
    credentials Secret, and the token then obtained has not expired: an operator
    restart then costs no Auth0 request per tenant. Anything else is checked again.
    """
    status = body.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    expires = parse_time(status.get("tokenExpiresAt"))
    return (
        ready.get("status") == "True"
        and credentials is not None
        and status.get("credentialsVersion") == credentials
        and status.get("observedGeneration") == (body.get("metadata") or {}).get("generation")
        and expires is not None
        and expires > now + _TOKEN_MARGIN
    )


@kopf.on.event(GROUP, VERSION, "auth0tenants", registry=registry)
async def tenant_event(type: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A namespaced tenant changed: report its readiness, reconcile its users."""
    ref = TenantRef("Auth0Tenant", body.metadata.name or "", body.metadata.namespace)
    await _tenant_event(ref, type, dict(body), _context(memo))


@kopf.on.event(GROUP, VERSION, "clusterauth0tenants", registry=registry)
async def cluster_tenant_event(type: str, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A cluster tenant changed: report its readiness, reconcile its users."""
    ref = TenantRef("ClusterAuth0Tenant", body.metadata.name or "", None)
    await _tenant_event(ref, type, dict(body), _context(memo))
