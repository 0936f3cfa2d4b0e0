"""Tenants: resolving ``spec.tenantRef``, enforcing allow-lists, one Auth0 client each.

:class:`TenantRegistry` turns an Auth0ClientSecret's tenant reference into a
:class:`TenantSpec` and a shared :class:`Auth0Client` (one token cache and one
rate budget per tenant, SPEC §1), after checking the tenant's
``allowedNamespaces`` and ``allowedClientIds``. Problems are
:class:`TenantProblem` with a condition reason and an actionable message;
none of them costs an Auth0 request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from auth0_rotator.auth0 import Auth0Client, TenantConnection
from auth0_rotator.kube import KubeStore, decode_secret
from auth0_rotator.model import ClientSecretSpec, SpecError, TenantRef, TenantSpec

__all__ = ["TenantProblem", "TenantRegistry", "selector_matches"]

log = logging.getLogger(__name__)


class TenantProblem(Exception):
    """The tenant cannot be used for this resource; ``reason`` goes into the condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes LabelSelector matches ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


class TenantRegistry:
    """Resolves tenants and keeps one :class:`Auth0Client` per tenant configuration."""

    def __init__(
        self,
        store: KubeStore,
        *,
        observer: Callable[[str, str, int], None] | None = None,
        extra_ca_file: str | None = None,
    ) -> None:
        self.store = store
        self._observer = observer
        """Called with (tenant domain, endpoint, HTTP status) for every Auth0 answer."""
        self._extra_ca_file = extra_ca_file
        self._clients: dict[str, tuple[tuple[Any, ...], Auth0Client]] = {}
        self._retired: list[Auth0Client] = []
        self._lock = asyncio.Lock()
        self._seen: dict[str, dict[str, Any]] = {}
        """Tenant bodies as their latest watch events showed them (saves a read each use)."""

    def observe(self, ref: TenantRef, body: dict[str, Any]) -> None:
        """Remember a tenant as a watch event showed it (until it is forgotten)."""
        self._seen[ref.key] = body

    async def resolve(self, spec: ClientSecretSpec) -> TenantSpec:
        """The tenant of ``spec``, checked against its allow-lists.

        The tenant comes from its latest watch event when one was seen, else it
        is read (informer semantics: a change is applied once its event arrives).
        """
        ref = spec.tenant
        body = self._seen.get(ref.key)
        if body is None:
            body = await self.store.get_tenant(ref)
        where = f" in namespace {ref.namespace}" if ref.namespace else ""
        if body is None:
            raise TenantProblem(
                "TenantNotFound",
                f"{ref.kind} {ref.name!r} not found{where}: create it or fix spec.tenantRef",
            )
        try:
            tenant = TenantSpec.parse(ref, body)
        except (SpecError, KeyError) as exc:
            raise TenantProblem("InvalidTenant", f"{ref.kind} {ref.name}: {exc}") from None
        await self._check_namespace(tenant, spec.namespace)
        if (
            tenant.allowed_client_ids is not None
            and spec.client_id not in tenant.allowed_client_ids
        ):
            raise TenantProblem(
                "ClientNotAllowed",
                f"{ref.kind} {ref.name} does not allow client {spec.client_id}: add it to "
                "spec.allowedClientIds of the tenant",
            )
        return tenant

    async def _check_namespace(self, tenant: TenantSpec, namespace: str) -> None:
        names, selector = tenant.allowed_namespace_names, tenant.allowed_namespace_selector
        if names is None and selector is None:
            return
        if names and namespace in names:
            return
        if selector is not None and selector_matches(
            selector, await self.store.namespace_labels(namespace)
        ):
            return
        raise TenantProblem(
            "TenantNotAllowed",
            f"ClusterAuth0Tenant {tenant.ref.name} does not allow namespace {namespace}: "
            "add it to spec.allowedNamespaces of the tenant",
        )

    async def client(self, tenant: TenantSpec) -> Auth0Client:
        """The shared client for ``tenant`` (rebuilt when its spec or credentials change)."""
        secret = await self.store.read_secret(tenant.secret_namespace, tenant.secret_name)
        where = f"{tenant.secret_namespace}/{tenant.secret_name}"
        if secret is None:
            raise TenantProblem(
                "CredentialsNotFound",
                f"credentials Secret {where} of {tenant.ref.kind} {tenant.ref.name} not found",
            )
        client_id = decode_secret(secret, tenant.client_id_key)
        client_secret = decode_secret(secret, tenant.client_secret_key)
        for key, value in (
            (tenant.client_id_key, client_id),
            (tenant.client_secret_key, client_secret),
        ):
            if value is None:
                raise TenantProblem(
                    "CredentialsNotFound",
                    f"credentials Secret {where} has no key {key!r} (or it is empty)",
                )
        assert client_id is not None and client_secret is not None  # noqa: S101 - checked above
        version = (tenant.generation, (secret.get("metadata") or {}).get("resourceVersion"))
        async with self._lock:
            cached = self._clients.get(tenant.ref.key)
            if cached is not None and cached[0] == version:
                return cached[1]
            if cached is not None:
                # Callers may still be using the old client: close it later.
                self._retired.append(cached[1])
            auth0 = Auth0Client(
                TenantConnection(
                    domain=tenant.domain,
                    client_id=client_id.reveal(),
                    client_secret=client_secret,
                    audience=tenant.audience,
                    requests_per_second=tenant.requests_per_second,
                    burst=tenant.burst,
                    ca_file=self._extra_ca_file,
                    ca_pem=tenant.ca_bundle,
                ),
                observer=(
                    functools.partial(self._observer, tenant.domain) if self._observer else None
                ),
            )
            self._clients[tenant.ref.key] = (version, auth0)
            return auth0

    def credentials_version(self, tenant: TenantSpec) -> str | None:
        """The credentials Secret's resourceVersion behind the cached client of ``tenant``."""
        cached = self._clients.get(tenant.ref.key)
        return None if cached is None else str(cached[0][1])

    def budgets(self) -> dict[str, float]:
        """Requests left per tenant domain: Auth0's last x-ratelimit-remaining, else ours."""
        left: dict[str, float] = {}
        for _, auth0 in self._clients.values():
            budget = auth0.budget
            remaining = budget.server_remaining
            left[auth0.connection.domain] = float(
                remaining if remaining is not None else budget.tokens
            )
        return left

    def forget(self, ref: TenantRef) -> None:
        """Drop the cached client and body of a deleted tenant (the client closes at shutdown)."""
        self._seen.pop(ref.key, None)
        cached = self._clients.pop(ref.key, None)
        if cached is not None:
            self._retired.append(cached[1])

    async def aclose(self) -> None:
        """Close every client."""
        for auth0 in [*(c for _, c in self._clients.values()), *self._retired]:
            await auth0.aclose()
        self._clients.clear()
        self._retired.clear()
