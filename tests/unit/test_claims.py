"""One manager per Auth0 client: the holder wins, else the oldest resource."""

from __future__ import annotations

from typing import Any

from auth0_rotator.claims import ClientIndex, claim_of


def _body(
    namespace: str,
    name: str,
    created: str,
    client_id: str = "shared-app",
    tenant: dict[str, str] | None = None,
    holds: bool = False,
) -> dict[str, Any]:
    ref = tenant or {"kind": "ClusterAuth0Tenant", "name": "shared"}
    tenant_key = f"{ref['kind']}/{namespace if ref['kind'] == 'Auth0Tenant' else ''}/{ref['name']}"
    return {
        "metadata": {"namespace": namespace, "name": name, "creationTimestamp": created},
        "spec": {"clientId": client_id, "tenantRef": ref},
        "status": {"clientRef": f"{tenant_key}/{client_id}"} if holds else {},
    }


def _same(first: str, second: str) -> bool:
    return first == second


def _manager(index: ClientIndex, body: dict[str, Any]) -> tuple[str, str]:
    claim = claim_of(body)
    assert claim is not None
    return index.manager(claim, _same).key


def test_the_oldest_resource_manages_a_client_nobody_holds() -> None:
    index = ClientIndex()
    first = _body("team-a", "app", "2026-01-01T00:00:00Z")
    second = _body("team-b", "app", "2026-02-01T00:00:00Z")
    for body in (second, first):  # the order events arrive in does not matter
        index.update(body)
    assert _manager(index, second) == ("team-a", "app")
    assert _manager(index, first) == ("team-a", "app")


def test_the_holder_keeps_the_client_against_an_older_newcomer() -> None:
    index = ClientIndex()
    holder = _body("team-b", "app", "2026-02-01T00:00:00Z", holds=True)
    older = _body("team-a", "app", "2026-01-01T00:00:00Z")  # edited its clientId later
    index.update(holder)
    index.update(older)
    assert _manager(index, older) == ("team-b", "app")


def test_a_deleted_manager_hands_the_client_on() -> None:
    index = ClientIndex()
    first = _body("team-a", "app", "2026-01-01T00:00:00Z", holds=True)
    second = _body("team-b", "app", "2026-02-01T00:00:00Z")
    index.update(first)
    index.update(second)
    index.remove(("team-a", "app"))
    assert _manager(index, second) == ("team-b", "app")
    assert len(index) == 1


def test_other_clients_and_other_tenants_do_not_compete() -> None:
    index = ClientIndex()
    index.update(_body("team-a", "app", "2026-01-01T00:00:00Z"))
    mine = _body("team-b", "app", "2026-02-01T00:00:00Z", client_id="other-app")
    elsewhere = _body(
        "team-c", "app", "2026-03-01T00:00:00Z", tenant={"kind": "Auth0Tenant", "name": "own"}
    )
    assert _manager(index, mine) == ("team-b", "app")
    assert _manager(index, elsewhere) == ("team-c", "app")


def test_a_changed_client_id_moves_the_claim() -> None:
    index = ClientIndex()
    index.update(_body("team-a", "app", "2026-01-01T00:00:00Z"))
    index.update(_body("team-a", "app", "2026-01-01T00:00:00Z", client_id="moved-app"))
    second = _body("team-b", "app", "2026-02-01T00:00:00Z")
    assert _manager(index, second) == ("team-b", "app")
