"""Every journal field the engine writes survives the API server's pruning.

``status.rotation`` has a structural schema: a key the engine writes but the
CRD does not declare is silently dropped on the next status write (this is how
``delivered`` once lost Delivering progress). The keys come from
:class:`RotationJournal` itself, so a new field without a schema entry fails here.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import yaml

from auth0_rotator.journal import Phase, RotationJournal

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _journal_keys() -> set[str]:
    journal = RotationJournal.start(
        trigger="annotation",
        strategy="Generate",
        client_id="c",
        tenant="Auth0Tenant/t",
        holder="op",
        now=NOW,
    )
    keys = set(journal.as_status())
    assert len(keys) == len(fields(RotationJournal))  # one status key per field
    return keys


def test_every_journal_key_is_declared_in_the_crd_and_its_chart_copy() -> None:
    keys = _journal_keys()
    assert {"id", "phase", "trigger", "delivered", "retryAt"} <= keys
    for crds in (REPO / "crds", REPO / "charts" / "auth0-rotator" / "crds"):
        crd = yaml.safe_load((crds / "auth0clientsecrets.auth0rotator.dev.yaml").read_text())
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        rotation = status["properties"]["rotation"]
        declared = set(rotation["properties"])
        assert keys <= declared, f"{crds.name}: not in the schema: {sorted(keys - declared)}"
        described = rotation["properties"]["phase"]["description"]
        assert all(phase.value in described for phase in Phase), described
