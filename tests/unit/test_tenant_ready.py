"""When a restarted operator may skip the token request for a tenant (handlers._still_ready)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from auth0_rotator.tenant_status import still_ready as _still_ready

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _body(**status: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "observedGeneration": 3,
        "conditions": [{"type": "Ready", "status": "True", "reason": "TokenObtained"}],
        "tokenExpiresAt": "2026-11-30T11:00:00Z",
        "credentialsVersion": "41",
    }
    base.update(status)
    return {"metadata": {"generation": 3}, "status": base}


def test_proven_credentials_need_no_token() -> None:
    assert _still_ready(_body(), "41", NOW)


@pytest.mark.parametrize(
    ("body", "credentials"),
    [
        (_body(), "42"),  # the credentials Secret changed
        (_body(), None),  # no credentials read
        (_body(credentialsVersion=None), "41"),  # written by an older operator
        (_body(observedGeneration=2), "41"),  # the spec changed
        (_body(tokenExpiresAt="2026-11-29T12:05:00Z"), "41"),  # token about to expire
        (_body(tokenExpiresAt=None), "41"),
        (_body(conditions=[{"type": "Ready", "status": "False"}]), "41"),
        ({"metadata": {"generation": 3}}, "41"),  # never reported
    ],
)
def test_anything_else_is_checked_with_a_token(
    body: dict[str, Any], credentials: str | None
) -> None:
    assert not _still_ready(body, credentials, NOW)
