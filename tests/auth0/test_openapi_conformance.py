"""The fake tenant's client endpoints answer what Auth0's OpenAPI description says."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from auth0_rotator_dev.fake_auth0 import FakeAuth0Server
from tests.auth0.conftest import ALL_SCOPES, CreateClient, management_bearer
from tests.auth0.openapi import Reference, errors

MANAGEMENT = Reference("auth0-management-api.subset.openapi.json")


def _validator(operation: tuple[str, str], status: str = "200") -> Any:
    """A validator for the JSON answer ``status`` of ``(path, method)`` in the reference."""
    path, method = operation
    return MANAGEMENT.answer(path, method, status)


_errors = errors


@pytest.mark.skipif(not MANAGEMENT.shared.exists(), reason="shared reference not beside this")
def test_copy_of_the_reference_spec_is_current() -> None:
    assert MANAGEMENT.copy.read_bytes() == MANAGEMENT.shared.read_bytes()


@pytest.fixture
async def bearer(
    control: httpx.AsyncClient, fake: FakeAuth0Server, create_client: CreateClient
) -> dict[str, str]:
    scopes = [*ALL_SCOPES, "read:actions", "update:actions", "create:actions"]
    scopes.append("update:rules_configs")
    bearer = await management_bearer(control, fake, create_client, scopes)
    await create_client("app", client_metadata={"team": "payments"})
    return bearer


async def test_get_client_matches_get_client_response_content(
    control: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    body = (await control.get("/api/v2/clients/app", headers=bearer)).json()
    assert "client_secret" in body
    assert _errors(_validator(("/clients/{id}", "get")), body) == []


async def test_patch_client_matches_update_client_response_content(
    control: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    resp = await control.patch(
        "/api/v2/clients/app", json={"client_secret": "c" * 64}, headers=bearer
    )
    assert resp.status_code == 200
    assert _errors(_validator(("/clients/{id}", "patch")), resp.json()) == []


async def test_rotate_secret_matches_rotate_client_secret_response_content(
    control: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    resp = await control.post("/api/v2/clients/app/rotate-secret", headers=bearer)
    assert resp.status_code == 200
    assert _errors(_validator(("/clients/{id}/rotate-secret", "post")), resp.json()) == []


async def test_action_endpoints_match_the_reference(
    control: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    await control.post("/_fake/actions", json={"id": "act1", "secrets": {"OTHER": "o"}})
    got = await control.get("/api/v2/actions/actions/act1", headers=bearer)
    assert _errors(_validator(("/actions/actions/{id}", "get")), got.json()) == []
    patched = await control.patch(
        "/api/v2/actions/actions/act1",
        json={"secrets": [{"name": "OTHER"}, {"name": "API_SECRET", "value": "v" * 48}]},
        headers=bearer,
    )
    assert patched.status_code == 200, patched.text
    assert _errors(_validator(("/actions/actions/{id}", "patch")), patched.json()) == []
    # Values are never shown, only names.
    assert "v" * 48 not in patched.text
    deployed = await control.post("/api/v2/actions/actions/act1/deploy", headers=bearer)
    assert deployed.status_code == 202
    validator = _validator(("/actions/actions/{id}/deploy", "post"), "202")
    assert _errors(validator, deployed.json()) == []


async def test_rules_config_put_matches_the_reference(
    control: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    resp = await control.put("/api/v2/rules-configs/API_KEY", json={"value": "x"}, headers=bearer)
    assert resp.status_code == 200
    assert _errors(_validator(("/rules-configs/{key}", "put")), resp.json()) == []


def test_the_validator_rejects_a_wrongly_typed_client() -> None:
    # Guards the tests above against a schema that accepts anything.
    bad = {"client_id": 42, "grant_types": "client_credentials", "app_type": "toaster"}
    assert len(_errors(_validator(("/clients/{id}", "get")), bad)) >= 3
