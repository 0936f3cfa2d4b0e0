"""Tenants: resolving ``spec.tenantRef``, enforcing who may reach what, one Auth0 client each.

:class:`TenantRegistry` turns an Auth0ClientSecret's tenant reference into a
:class:`TenantSpec` and, inside a :meth:`TenantRegistry.session`, an
:class:`Auth0Client` with the tenant's management credentials, after every
check of :mod:`auth0_rotator.access` and :mod:`auth0_rotator.claims`. Problems
are :class:`TenantProblem` with a condition reason and an actionable message;
none of them costs an Auth0 request.

Clients: one per tenant configuration (spec generation and credentials
Secret version); every client of one Auth0 domain shares that domain's rate
budget and circuit breaker. A client replaced by a new configuration is closed
as soon as no session uses it any more, so edits never pile up connection
pools and TLS contexts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from auth0_rotator import keypairs
from auth0_rotator.access import (
    DomainAllowList,
    TenantProblem,
    check_namespace,
    check_reach,
    needs_namespace_labels,
)
from auth0_rotator.auth0 import (
    Auth0Client,
    CircuitBreaker,
    DomainLimits,
    InvalidCABundle,
    TenantConnection,
)
from auth0_rotator.claims import ClientIndex, claim_of
from auth0_rotator.kube import KubeStore, decode_secret
from auth0_rotator.labels import CREDENTIALS_LABEL
from auth0_rotator.model import ClientSecretSpec, SpecError, TenantRef, TenantSpec
from auth0_rotator.secretvalue import SecretValue

__all__ = ["TenantAccess", "TenantProblem", "TenantRegistry"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantAccess:
    """A resource's way into its tenant, valid for one session."""

    tenant: TenantSpec
    auth0: Auth0Client
    management_client_id: str


@dataclass
class _Client:
    version: tuple[Any, ...]
    auth0: Auth0Client
    users: int = 0
    retired: bool = False


class TenantRegistry:
    """Resolves tenants, checks access, and keeps one :class:`Auth0Client` per tenant."""

    def __init__(
        self,
        store: KubeStore,
        *,
        observer: Callable[[str, str, int], None] | None = None,
        extra_ca_file: str | None = None,
        allowed_domains: DomainAllowList | None = None,
        claims: ClientIndex | None = None,
        request_deadline: float = 30.0,
        breaker_cooldown: float = 30.0,
    ) -> None:
        self.store = store
        self._observer = observer
        """Called with (tenant domain, endpoint, HTTP status) for every Auth0 answer."""
        self._extra_ca_file = extra_ca_file
        self.allowed_domains = allowed_domains or DomainAllowList()
        self.claims = claims or ClientIndex()
        self._deadline = request_deadline
        self._cooldown = breaker_cooldown
        self._clients: dict[str, _Client] = {}
        self._retired: list[_Client] = []
        self._limits: dict[str, DomainLimits] = {}
        self._seen: dict[str, dict[str, Any]] = {}
        """Tenant bodies as their latest watch events showed them (saves a read each use)."""

    # -- what the watch shows -----------------------------------------------------------

    def observe(self, ref: TenantRef, body: dict[str, Any]) -> None:
        """Remember a tenant as a watch event showed it (until it is forgotten)."""
        self._seen[ref.key] = body

    async def forget(self, ref: TenantRef) -> None:
        """Drop the body and the client of a deleted tenant (closed once unused)."""
        self._seen.pop(ref.key, None)
        cached = self._clients.pop(ref.key, None)
        if cached is not None:
            await self._retire(cached)

    def domain_of(self, ref_key: str) -> str | None:
        """The domain a known tenant names (``None`` if it was not seen)."""
        body = self._seen.get(ref_key)
        domain = ((body or {}).get("spec") or {}).get("domain")
        return str(domain).lower() if domain else None

    def same_tenant(self, first: str, second: str) -> bool:
        """Whether two tenant references reach the same Auth0 tenant (object or domain)."""
        if first == second:
            return True
        domain = self.domain_of(first)
        return domain is not None and domain == self.domain_of(second)

    # -- checks -------------------------------------------------------------------------

    async def resolve(self, spec: ClientSecretSpec) -> TenantSpec:
        """The tenant of ``spec``, checked against every allow-list (credentials aside).

        The tenant comes from its latest watch event when one was seen, else it
        is read (informer semantics: a change is applied once its event arrives).
        """
        tenant, _labels = await self._checked(spec)
        return tenant

    async def _checked(self, spec: ClientSecretSpec) -> tuple[TenantSpec, dict[str, str]]:
        tenant = await self._tenant(spec.tenant)
        self.allowed_domains.check(tenant)
        labels = (
            await self.store.namespace_labels(spec.namespace)
            if needs_namespace_labels(tenant)
            else {}
        )
        check_namespace(tenant, spec.namespace, labels)
        check_reach(tenant, spec, labels, None)
        return tenant, labels

    async def _tenant(self, ref: TenantRef) -> TenantSpec:
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
            return TenantSpec.parse(ref, body)
        except (SpecError, KeyError) as exc:
            raise TenantProblem("InvalidTenant", f"{ref.kind} {ref.name}: {exc}") from None

    def _check_manager(self, spec: ClientSecretSpec, body: dict[str, Any]) -> None:
        claim = claim_of(body)
        if claim is None:
            return
        manager = self.claims.manager(claim, self.same_tenant)
        if manager.key != claim.key:
            raise TenantProblem(
                "ClientAlreadyManaged",
                f"client {spec.client_id} of {spec.tenant.kind} {spec.tenant.name} is already "
                f"managed by Auth0ClientSecret {manager.key[0]}/{manager.key[1]}; one client has "
                "one manager: delete one of them, or point this one at another client",
            )

    # -- sessions -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def session(
        self, spec: ClientSecretSpec, body: dict[str, Any], *, journal_open: bool = False
    ) -> AsyncIterator[TenantAccess]:
        """Everything ``spec`` may use of its tenant, for the duration of the block.

        ``body`` is the resource as this reconcile sees it. A resource whose
        rotation journal is open finishes it even if another resource claimed
        its client since (its value may already be in Auth0).
        """
        tenant, labels = await self._checked(spec)
        if not journal_open:
            self._check_manager(spec, body)
        async with self.connect(tenant) as (auth0, _version):
            check_reach(tenant, spec, labels, auth0.connection.client_id)
            yield TenantAccess(tenant, auth0, auth0.connection.client_id)

    @contextlib.asynccontextmanager
    async def connect(self, tenant: TenantSpec) -> AsyncIterator[tuple[Auth0Client, str]]:
        """The tenant's client and its credentials version, held for the block."""
        self.allowed_domains.check(tenant)
        cached = await self._acquire(tenant)
        try:
            yield cached.auth0, str(cached.version[1])
        finally:
            cached.users -= 1
            if cached.retired and cached.users == 0:
                await self._close(cached)

    async def _credentials(self, tenant: TenantSpec) -> tuple[dict[str, Any], Any]:
        where = f"{tenant.secret_namespace}/{tenant.secret_name}"
        try:
            secret = await self.store.read_secret(tenant.secret_namespace, tenant.secret_name)
        except Exception as exc:  # an API refusal: never its text (headers, body)
            status = getattr(exc, "status", None)
            raise TenantProblem(
                "CredentialsNotFound",
                f"credentials Secret {where} of {tenant.ref.kind} {tenant.ref.name} cannot be "
                f"read ({type(exc).__name__}{f' HTTP {status}' if status else ''}); the operator "
                "needs get on Secrets in that namespace",
            ) from None
        if secret is None:
            raise TenantProblem(
                "CredentialsNotFound",
                f"credentials Secret {where} of {tenant.ref.kind} {tenant.ref.name} not found",
            )
        labels = (secret.get("metadata") or {}).get("labels") or {}
        key, value = CREDENTIALS_LABEL
        if labels.get(key) != value:
            raise TenantProblem(
                "CredentialsNotAllowed",
                f"Secret {where} is not marked as Auth0 management credentials, so "
                f"{tenant.ref.kind} {tenant.ref.name} may not use it: its owner labels it "
                f"(kubectl label secret -n {tenant.secret_namespace} {tenant.secret_name} "
                f"{key}={value})",
            )
        private_key = decode_secret(secret, tenant.private_key_key)
        # A private key means Private Key JWT; otherwise the client secret.
        needed = [tenant.client_id_key]
        needed.append(tenant.private_key_key if private_key else tenant.client_secret_key)
        values = {}
        for k in needed:
            found = decode_secret(secret, k)
            if found is None:
                raise TenantProblem(
                    "CredentialsNotFound",
                    f"credentials Secret {where} has no key {k!r} (or it is empty)",
                )
            values[k] = found
        if private_key is not None:
            algorithm = decode_secret(secret, tenant.algorithm_key)
            key_id = decode_secret(secret, tenant.key_id_key)
            values[tenant.algorithm_key] = algorithm or SecretValue("RS256")
            if key_id is not None:
                values[tenant.key_id_key] = key_id
        return values, (secret.get("metadata") or {}).get("resourceVersion")

    async def _acquire(self, tenant: TenantSpec) -> _Client:
        """The client for ``tenant``'s current configuration, with one more user counted."""
        values, secret_version = await self._credentials(tenant)
        version = (tenant.generation, secret_version)
        cached = self._clients.get(tenant.ref.key)
        if cached is not None and cached.version == version:
            cached.users += 1
            return cached
        private_key = values.get(tenant.private_key_key)
        key_id = values.get(tenant.key_id_key)
        algorithm = values.get(tenant.algorithm_key)
        if private_key is not None and algorithm is not None:
            await self._check_private_key(tenant, private_key, algorithm.reveal())
        connection = TenantConnection(
            domain=tenant.domain,
            client_id=values[tenant.client_id_key].reveal(),
            client_secret=None if private_key else values[tenant.client_secret_key],
            private_key=private_key,
            key_id=key_id.reveal() if key_id else None,
            algorithm=algorithm.reveal() if algorithm else "RS256",
            audience=tenant.audience,
            requests_per_second=tenant.requests_per_second,
            burst=tenant.burst,
            ca_file=self._extra_ca_file,
            ca_pem=tenant.ca_bundle,
            deadline=self._deadline,
        )
        try:
            auth0 = Auth0Client(
                connection,
                limits=self._domain_limits(tenant),
                observer=(
                    functools.partial(self._observer, tenant.domain) if self._observer else None
                ),
            )
        except InvalidCABundle as exc:
            raise TenantProblem(
                "InvalidTenant", f"{tenant.ref.kind} {tenant.ref.name}: {exc}"
            ) from None
        # Installed and counted with no await in between: nobody can retire it unused.
        replaced = self._clients.get(tenant.ref.key)
        self._clients[tenant.ref.key] = fresh = _Client(version, auth0, users=1)
        self._configure_limits(tenant.domain)
        if replaced is not None:
            await self._retire(replaced)
        return fresh

    @staticmethod
    async def _check_private_key(tenant: TenantSpec, key: SecretValue, algorithm: str) -> None:
        """Refuse a private key that cannot sign (loading one is slow: off the event loop)."""
        try:
            await asyncio.to_thread(keypairs.check_private_key, key, algorithm)
        except keypairs.InvalidPrivateKey as exc:
            where = f"{tenant.secret_namespace}/{tenant.secret_name}"
            raise TenantProblem(
                "InvalidCredentials",
                f"credentials Secret {where}: the private key in {tenant.private_key_key!r} "
                f"{exc}; the algorithm comes from {tenant.algorithm_key!r} (default RS256)",
            ) from None

    def _domain_limits(self, tenant: TenantSpec) -> DomainLimits:
        domain = tenant.domain.lower()
        limits = self._limits.get(domain)
        if limits is None:
            limits = DomainLimits.for_rate(tenant.requests_per_second, tenant.burst)
            limits.breaker = CircuitBreaker(cooldown=self._cooldown)
            self._limits[domain] = limits
        return limits

    def _configure_limits(self, domain: str) -> None:
        """The domain's budget takes the lowest rate of the tenants naming it."""
        users = [
            c.auth0.connection
            for c in self._clients.values()
            if c.auth0.connection.domain.lower() == domain.lower()
        ]
        limits = self._limits.get(domain.lower())
        if limits is None:
            return
        if not users:
            del self._limits[domain.lower()]
            return
        limits.budget.configure(
            min(u.requests_per_second for u in users), min(u.burst for u in users)
        )

    async def _retire(self, cached: _Client) -> None:
        cached.retired = True
        self._configure_limits(cached.auth0.connection.domain)
        if cached.users == 0:
            await self._close(cached)
        else:
            self._retired.append(cached)

    async def _close(self, cached: _Client) -> None:
        if cached in self._retired:
            self._retired.remove(cached)
        await cached.auth0.aclose()

    def open_clients(self) -> int:
        """Auth0 clients whose connection pools are open (current and retired in use)."""
        return sum(not c.auth0.closed for c in [*self._clients.values(), *self._retired])

    def credentials_version(self, tenant: TenantSpec) -> str | None:
        """The credentials Secret's resourceVersion behind the cached client of ``tenant``."""
        cached = self._clients.get(tenant.ref.key)
        return None if cached is None else str(cached.version[1])

    def budgets(self) -> dict[str, float]:
        """Requests left per Auth0 domain: Auth0's last x-ratelimit-remaining, else ours."""
        left: dict[str, float] = {}
        for domain, limits in self._limits.items():
            remaining = limits.budget.server_remaining
            left[domain] = float(remaining if remaining is not None else limits.budget.tokens)
        return left

    async def aclose(self) -> None:
        """Close every client."""
        for cached in [*self._clients.values(), *self._retired]:
            await cached.auth0.aclose()
        self._clients.clear()
        self._retired.clear()
        self._limits.clear()
