"""Every journal field the engine writes survives the API server's pruning.

``status.rotation`` has a structural schema: a key the engine writes but the
CRD does not declare is silently dropped on the next status write (this is how
``delivered`` once lost Delivering progress). The engine's keys are read from
its source, so a new key without a schema entry fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _journal_keys() -> set[str]:
    source = (REPO / "operator" / "auth0_rotator" / "engine.py").read_text()
    keys = set(re.findall(r'journal\["(\w+)"\]', source))
    keys |= set(re.findall(r'journal\.get\("(\w+)"', source))
    start = source.index("journal = {")
    literal = source[start : source.index("}", start)]
    keys |= set(re.findall(r'^\s+"(\w+)":', literal, re.MULTILINE))
    return keys


def test_every_journal_key_is_declared_in_the_crd_and_its_chart_copy() -> None:
    keys = _journal_keys()
    assert {"id", "phase", "trigger", "delivered", "retryAt"} <= keys  # the scan works
    for crds in (REPO / "crds", REPO / "charts" / "auth0-rotator" / "crds"):
        crd = yaml.safe_load((crds / "auth0clientsecrets.auth0rotator.dev.yaml").read_text())
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        declared = set(status["properties"]["rotation"]["properties"])
        assert keys <= declared, f"{crds.name}: not in the schema: {sorted(keys - declared)}"
