"""One manager per Auth0 client: which Auth0ClientSecret manages a client of a tenant.

Two resources managing one client (in any namespaces) would rotate it against
each other, and the second would copy the first one's secret into its own
namespace. :class:`ClientIndex` knows every Auth0ClientSecret the operator
serves (from the watch, seeded by one list at start, so a restart never lets
the younger one act first) and names the one that manages a client:

1. a resource that already holds it (``status.clientRef`` is its own
   ``spec.clientId`` of that tenant) wins over one that does not;
2. among equals, the oldest (``creationTimestamp``, then namespace/name).

"One tenant" means the same tenant object, or tenant objects naming the same
Auth0 domain (the caller says which, from the tenants it knows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Claim", "ClientIndex"]

Key = tuple[str, str]


@dataclass(frozen=True)
class Claim:
    """What one Auth0ClientSecret asks to manage."""

    key: Key
    created: str
    tenant: str
    """The tenant reference's key (``kind/namespace/name``)."""
    client_id: str
    holds: bool
    """Its status says it already manages this client."""

    def order(self) -> tuple[bool, str, Key]:
        """Sort key: holders first, then the oldest."""
        return (not self.holds, self.created, self.key)


def claim_of(body: dict[str, Any]) -> Claim | None:
    """The claim an Auth0ClientSecret object makes (``None`` without a client id)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    client_id = spec.get("clientId")
    if not isinstance(client_id, str) or not client_id:
        return None
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    ref = spec.get("tenantRef") or {}
    kind = ref.get("kind") or "Auth0Tenant"
    tenant = f"{kind}/{namespace if kind == 'Auth0Tenant' else ''}/{ref.get('name') or 'default'}"
    holds = (body.get("status") or {}).get("clientRef") == f"{tenant}/{client_id}"
    return Claim(
        (namespace, name), str(meta.get("creationTimestamp") or ""), tenant, client_id, holds
    )


class ClientIndex:
    """Every known claim, by client id."""

    def __init__(self) -> None:
        self._by_key: dict[Key, Claim] = {}
        self._by_client: dict[str, set[Key]] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def update(self, body: dict[str, Any]) -> None:
        """Record (or replace) the claim of an Auth0ClientSecret as a watch event showed it."""
        claim = claim_of(body)
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        self.remove(key)
        if claim is None:
            return
        self._by_key[key] = claim
        self._by_client.setdefault(claim.client_id, set()).add(key)

    def remove(self, key: Key) -> None:
        """Forget a deleted resource."""
        old = self._by_key.pop(key, None)
        if old is None:
            return
        keys = self._by_client.get(old.client_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_client[old.client_id]

    def manager(self, claim: Claim, same_tenant: Callable[[str, str], bool]) -> Claim:
        """Who manages ``claim``'s client of its tenant: ``claim`` itself, or another one."""
        rivals = [
            self._by_key[k]
            for k in self._by_client.get(claim.client_id, ())
            if k != claim.key and same_tenant(self._by_key[k].tenant, claim.tenant)
        ]
        return min([claim, *rivals], key=Claim.order)
