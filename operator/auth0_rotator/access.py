"""Who may reach what: the operator's domain allow-list and each tenant's allow-lists.

Plain functions of data, no I/O, so every rule is unit tested. A refusal is a
:class:`TenantProblem` with the condition reason and a message that says what
to change; nothing here is ever decided by calling Auth0.

The rules (closed by default):

- **Domains.** Credentials go only to tenant domains on the operator's
  allow-list (``--allowed-domain``, default ``*.auth0.com``). A wildcard
  ``*.suffix`` (or ``*``) matches DNS names on the default port only, never an
  IP literal and never a cluster-local name (``localhost``, ``*.svc``,
  ``*.cluster.local``, ``*.local``, ``*.internal``) unless the wildcard itself
  is under such a suffix; ``host:port`` or ``host:*`` allow a port. Anything
  else needs its exact entry.
- **Namespaces.** An ``Auth0Tenant`` serves its own namespace. A
  ``ClusterAuth0Tenant`` serves only the namespaces ``allowedNamespaces``
  names or selects; without it, none (``all: true`` allows every namespace).
- **Clients.** ``allowedClientIds`` (when set) lists the client ids a tenant
  serves, as ``spec.clientId`` and as ``auth0Targets[].clientMetadata.clientId``.
  The tenant's own management client is refused unless listed there.
- **Auth0-side targets.** Action ids and rules-config keys need the tenant's
  ``allowedActionIds`` / ``allowedRulesConfigKeys``; unset means any for an
  ``Auth0Tenant`` (its namespace owns the credentials) and none for a
  ``ClusterAuth0Tenant``.
- **Per namespace.** A cluster tenant's ``namespaceAccess`` entries say which
  client ids, Action ids and rules-config keys the namespaces they match may
  use; with entries, a namespace may use only what a matching entry lists.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from auth0_rotator.labels import selector_matches
from auth0_rotator.model import ClientSecretSpec, TenantSpec

__all__ = [
    "DEFAULT_ALLOWED_DOMAINS",
    "DomainAllowList",
    "TenantProblem",
    "check_namespace",
    "check_reach",
    "needs_namespace_labels",
]

DEFAULT_ALLOWED_DOMAINS = ("*.auth0.com",)
"""Auth0's own tenant domains (``acme.auth0.com``, ``acme.eu.auth0.com``, ...)."""

_LOCAL_SUFFIXES = ("localhost", "svc", "cluster.local", "local", "internal")
"""Names that reach inside the cluster or the node: never matched by a broad wildcard."""


class TenantProblem(Exception):
    """A tenant cannot be used (for this resource); ``reason`` goes into the condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _split(domain: str) -> tuple[str, str | None]:
    """``host[:port]`` (IPv6 in brackets) as ``(lowercase host, port or None)``."""
    text = domain.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, (rest[1:] if rest.startswith(":") else None)
    host, sep, port = text.rpartition(":")
    if sep and host and ":" not in host:
        return host.rstrip("."), port
    return text.rstrip("."), None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_local(host: str) -> bool:
    return any(host == s or host.endswith("." + s) for s in _LOCAL_SUFFIXES)


_PATTERN = re.compile(
    r"^(\*|\*\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?|[a-z0-9]([-a-z0-9.]*[a-z0-9])?|\[[0-9a-f:.]+\])"
    r"(:([0-9]{1,5}|\*))?$"
)


@dataclass(frozen=True)
class DomainAllowList:
    """The operator-level list of tenant domains credentials may be sent to."""

    patterns: tuple[str, ...] = DEFAULT_ALLOWED_DOMAINS

    @classmethod
    def parse(cls, patterns: Iterable[str]) -> DomainAllowList:
        """Check and keep ``patterns``; a ``ValueError`` names the first malformed one."""
        kept = tuple(p.strip().lower() for p in patterns)
        for pattern in kept:
            if not _PATTERN.match(pattern):
                raise ValueError(
                    f"allowed domain {pattern!r} is not host[:port], *.suffix[:port], "
                    "host:* or [ipv6]:port (a wildcard only as the first label)"
                )
        return cls(kept)

    def allows(self, domain: str) -> bool:
        """Whether ``domain`` (``host`` or ``host:port``) matches an entry."""
        host, port = _split(domain)
        if port == "443":
            port = None
        for pattern in self.patterns:
            want_host, want_port = _split(pattern)
            if want_port not in ("*", port):
                continue
            if want_host == host:
                return True
            if want_host == "*" or want_host.startswith("*."):
                suffix = want_host[1:]  # "" for "*", ".example.com" for "*.example.com"
                if _is_ip(host) or (_is_local(host) and not _is_local(suffix.lstrip("."))):
                    continue
                if suffix == "" or (host.endswith(suffix) and len(host) > len(suffix)):
                    return True
        return False

    def check(self, tenant: TenantSpec) -> None:
        """Raise ``DomainNotAllowed`` unless the domain is allowed."""
        if self.allows(tenant.domain):
            return
        raise TenantProblem(
            "DomainNotAllowed",
            f"{tenant.ref.kind} {tenant.ref.name}: domain {tenant.domain} is not on the "
            f"operator's allow-list ({', '.join(self.patterns) or 'empty'}); credentials are "
            "only sent there. An operator admin adds it with --allowed-domain (Helm value "
            "allowedDomains); IP addresses, ports and cluster-local names need an exact entry",
        )


def _matches(
    names: Iterable[str], selector: dict[str, Any] | None, namespace: str, labels: dict[str, str]
) -> bool:
    return namespace in names or (selector is not None and selector_matches(selector, labels))


def needs_namespace_labels(tenant: TenantSpec) -> bool:
    """Whether deciding for ``tenant`` needs the namespace's labels (a selector is involved)."""
    if not tenant.cluster_scoped:
        return False
    return tenant.allowed_namespace_selector is not None or any(
        entry.selector is not None for entry in tenant.namespace_access or ()
    )


def check_namespace(tenant: TenantSpec, namespace: str, labels: dict[str, str]) -> None:
    """Raise ``TenantNotAllowed`` unless ``tenant`` serves ``namespace`` (closed by default)."""
    if not tenant.cluster_scoped or tenant.all_namespaces:
        return
    names = tenant.allowed_namespace_names or ()
    if _matches(names, tenant.allowed_namespace_selector, namespace, labels):
        return
    if tenant.allowed_namespace_names is None and tenant.allowed_namespace_selector is None:
        why = "it has no spec.allowedNamespaces, so it serves no namespace"
    else:
        why = "spec.allowedNamespaces does not name or select it"
    raise TenantProblem(
        "TenantNotAllowed",
        f"ClusterAuth0Tenant {tenant.ref.name} does not allow namespace {namespace}: {why}; "
        "a cluster admin adds it to spec.allowedNamespaces of the tenant (all: true allows "
        "every namespace)",
    )


def check_reach(
    tenant: TenantSpec,
    spec: ClientSecretSpec,
    labels: dict[str, str],
    management_client_id: str | None,
) -> None:
    """Raise ``ClientNotAllowed`` / ``TargetNotAllowed`` for anything ``spec`` may not reach.

    ``management_client_id`` is the tenant's own M2M client (``None`` while
    its credentials are unknown).
    """
    where = f"{tenant.ref.kind} {tenant.ref.name}"
    entries = [
        e
        for e in tenant.namespace_access or ()
        if _matches(e.names, e.selector, spec.namespace, labels)
    ]
    per_namespace = tenant.namespace_access is not None

    for field_name, client_id in [
        ("spec.clientId", spec.client_id),
        *(("auth0Targets[].clientMetadata.clientId", c) for c in spec.target_client_ids()),
    ]:
        if client_id == management_client_id and client_id not in (tenant.allowed_client_ids or ()):
            raise TenantProblem(
                "ClientNotAllowed",
                f"{field_name} {client_id} is the management application of {where}; its "
                "credentials are never handed out unless the tenant lists it in "
                "spec.allowedClientIds",
            )
        if tenant.allowed_client_ids is not None and client_id not in tenant.allowed_client_ids:
            raise TenantProblem(
                "ClientNotAllowed",
                f"{where} does not allow client {client_id} ({field_name}): add it to "
                "spec.allowedClientIds of the tenant",
            )
        if per_namespace and not any(client_id in e.client_ids for e in entries):
            raise TenantProblem(
                "ClientNotAllowed",
                f"{where} does not let namespace {spec.namespace} use client {client_id} "
                f"({field_name}): add it to the clientIds of a spec.namespaceAccess entry "
                "that matches the namespace",
            )

    targets = (
        ("Action", "actionIds", spec.target_action_ids(), tenant.allowed_action_ids),
        (
            "rules config key",
            "rulesConfigKeys",
            spec.target_rules_config_keys(),
            tenant.allowed_rules_config_keys,
        ),
    )
    for what, list_name, wanted, allowed in targets:
        for item in wanted:
            tenant_level = f"allowed{list_name[0].upper()}{list_name[1:]}"
            if (allowed is None and tenant.cluster_scoped) or (
                allowed is not None and item not in allowed
            ):
                raise TenantProblem(
                    "TargetNotAllowed",
                    f"{where} does not allow the {what} {item} (auth0Targets): add it to "
                    f"spec.{tenant_level} of the tenant",
                )
            if per_namespace and not any(item in getattr(e, _FIELDS[list_name]) for e in entries):
                raise TenantProblem(
                    "TargetNotAllowed",
                    f"{where} does not let namespace {spec.namespace} use the {what} {item} "
                    f"(auth0Targets): add it to the {list_name} of a spec.namespaceAccess entry "
                    "that matches the namespace",
                )


_FIELDS = {"actionIds": "action_ids", "rulesConfigKeys": "rules_config_keys"}
