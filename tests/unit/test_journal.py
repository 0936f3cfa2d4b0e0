"""The typed journal reads what every release wrote and writes the same format back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from auth0_rotator.journal import Phase, RotationJournal
from auth0_rotator.schedule import format_time

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

WRITTEN_BEFORE = {
    # status.rotation as the engine before the redesign wrote it (a Rotate journal
    # after a refused request and a recovery).
    "id": "20261201115900-ab12cd34",
    "phase": "Claimed",
    "trigger": "annotation",
    "strategy": "Rotate",
    "clientId": "orders-api-client",
    "tenant": "Auth0Tenant/default",
    "startedAt": "2026-12-01T11:59:00Z",
    "renewedAt": "2026-12-01T11:59:30Z",
    "holder": "auth0-rotator-7d9f",
    "rerotated": True,
    "recovery": "rotate-secret had no effect; rotated again",
    "retryAt": "2026-12-01T12:00:30Z",
}


def test_a_journal_written_before_the_redesign_reads_back_unchanged() -> None:
    journal = RotationJournal.from_status(WRITTEN_BEFORE, default_strategy="Generate")
    assert journal.phase is Phase.CLAIMED and journal.strategy == "Rotate"
    assert journal.retry_at == NOW + timedelta(seconds=30)
    assert journal.tenant_ref() == ("Auth0Tenant", "default")
    written = journal.as_status()
    assert {k: v for k, v in written.items() if v is not None} == WRITTEN_BEFORE


def test_an_old_journal_without_a_strategy_takes_the_specs() -> None:
    raw = {k: v for k, v in WRITTEN_BEFORE.items() if k not in ("strategy", "clientId")}
    journal = RotationJournal.from_status(raw, default_strategy="Generate")
    assert journal.strategy == "Generate" and journal.tenant_ref() is None


def test_cleared_fields_are_written_as_null_so_the_merge_patch_removes_them() -> None:
    journal = RotationJournal.from_status(WRITTEN_BEFORE, default_strategy="Generate")
    moved = journal.at(Phase.REQUESTED, NOW, retry_at=None, rerotated=False)
    written = moved.as_status()
    assert written["retryAt"] is None and written["rerotated"] is None
    assert written["phase"] == "Requested" and written["renewedAt"] == format_time(NOW)
    assert written["startedAt"] == WRITTEN_BEFORE["startedAt"]


def test_a_new_journal_is_claimed_with_a_fresh_id() -> None:
    first, second = (
        RotationJournal.start(
            trigger="schedule",
            strategy="Generate",
            client_id="c",
            tenant="Auth0Tenant/t",
            holder="op",
            now=NOW,
        )
        for _ in range(2)
    )
    assert first.phase is Phase.CLAIMED and first.id != second.id
    assert first.id.startswith("20261201120000-")
    assert first.taken_over("other", NOW + timedelta(minutes=6)).holder == "other"


def test_an_unknown_phase_is_refused() -> None:
    with pytest.raises(ValueError):
        RotationJournal.from_status({**WRITTEN_BEFORE, "phase": "Teleported"}, default_strategy="x")
