"""Bad input is refused at ``kubectl apply`` time, by the CRDs' schema and CEL rules alone.

The catalogue is ``tests/data/admission_cases.yaml``: manifests the API server
must reject (each with the message a user would read) and valid edge cases it
must admit. Every case is created the way kubectl creates objects (server-side,
strict field validation) against the real local API server with the CRDs of
``crds/`` installed; no operator runs. A last check ties the catalogue to the
CRDs: every ``x-kubernetes-validations`` rule must have a message, and some
rejected case of that kind must quote it, so a new rule cannot go untested.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from auth0_rotator.model import GROUP, VERSION
from auth0_rotator_dev.devcluster import ControlPlane

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = yaml.safe_load((REPO / "tests" / "data" / "admission_cases.yaml").read_text())
REJECTED: list[dict[str, Any]] = CATALOGUE["rejected"]
ACCEPTED: list[dict[str, Any]] = CATALOGUE["accepted"]
CRDS: dict[str, dict[str, Any]] = {
    crd["spec"]["names"]["kind"]: crd
    for crd in (yaml.safe_load(path.read_text()) for path in sorted((REPO / "crds").glob("*.yaml")))
}
EXAMPLE_RESOURCES = [
    doc
    for path in sorted((REPO / "examples").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc and str(doc.get("apiVersion", "")).startswith(f"{GROUP}/")
]
MIN_REJECTIONS = 30


def _case_id(case: dict[str, Any]) -> str:
    return str(case["id"])


def _example_id(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}-{doc['metadata']['name']}"


def _rules(schema: Any) -> Iterator[dict[str, Any]]:
    """Every ``x-kubernetes-validations`` entry anywhere in an OpenAPI schema."""
    if isinstance(schema, dict):
        yield from schema.get("x-kubernetes-validations") or []
        for value in schema.values():
            yield from _rules(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _rules(value)


def _contains(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` holds everything of ``expected`` (the server may add defaults)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_contains(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


class Admission:
    """Creates custom resources as kubectl does, in one namespace, and cleans up what it made."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.cluster_objects: list[tuple[str, str]] = []
        """(plural, name) of cluster-scoped objects made; namespaced ones go with the namespace."""

    def create(self, kind: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create ``manifest`` as a ``kind``; return the stored object or raise ApiException."""
        names = CRDS[kind]["spec"]["names"]
        body = copy.deepcopy(manifest)
        body["apiVersion"] = f"{GROUP}/{VERSION}"
        body["kind"] = kind
        metadata = body.setdefault("metadata", {})
        metadata.pop("namespace", None)
        if CRDS[kind]["spec"]["scope"] == "Namespaced":
            created = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, names["plural"], body, field_validation="Strict"
            )
            return cast(dict[str, Any], created)
        # Cluster-scoped names are shared by the whole cluster: keep them unique to this run.
        metadata["name"] = f"{self.namespace}-{metadata['name']}"
        created = self.custom.create_cluster_custom_object(
            GROUP, VERSION, names["plural"], body, field_validation="Strict"
        )
        self.cluster_objects.append((names["plural"], metadata["name"]))
        return cast(dict[str, Any], created)

    def delete_cluster_objects(self) -> None:
        """Delete the cluster-scoped objects this run created."""
        for plural, name in self.cluster_objects:
            self.custom.delete_cluster_custom_object(GROUP, VERSION, plural, name)
        self.cluster_objects.clear()

    def refusal(self, kind: str, manifest: dict[str, Any]) -> tuple[int, str]:
        """The HTTP status and message with which the API server refuses ``manifest``."""
        try:
            self.create(kind, manifest)
        except ApiException as exc:
            return int(exc.status), str(json.loads(exc.body)["message"])
        raise AssertionError(f"the API server admitted {kind} {manifest}")


@pytest.fixture(scope="module")
def installed_crds(control_plane: ControlPlane) -> None:
    """The CRDs of ``crds/``, applied (idempotent) and established."""
    control_plane.kubectl_run("apply", "-f", str(REPO / "crds"))
    control_plane.kubectl_run(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"crd/{crd['metadata']['name']}" for crd in CRDS.values()),
    )


@pytest.fixture(scope="module")
def admission(api: client.ApiClient, installed_crds: None) -> Iterator[Admission]:
    """An :class:`Admission` working in a fresh namespace, deleted afterwards."""
    core = client.CoreV1Api(api)
    name = f"adm-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    admission = Admission(api, name)
    try:
        yield admission
    finally:
        admission.delete_cluster_objects()
        core.delete_namespace(name)


@pytest.mark.parametrize("case", REJECTED, ids=_case_id)
@pytest.mark.reliability("bad input rejected at admission (schema and CEL), per manifest")
def test_bad_manifest_is_rejected_with_an_actionable_message(
    admission: Admission, case: dict[str, Any]
) -> None:
    manifest = {"metadata": {"name": case["id"]}, **case["manifest"]}
    status, message = admission.refusal(case["kind"], manifest)
    assert status == case.get("status", 422), message
    assert case["expect"] in message


@pytest.mark.parametrize("case", ACCEPTED, ids=_case_id)
def test_valid_edge_case_is_admitted_unchanged(admission: Admission, case: dict[str, Any]) -> None:
    manifest = {"metadata": {"name": case["id"]}, **case["manifest"]}
    created = admission.create(case["kind"], manifest)
    # Nothing the user wrote was pruned or rewritten; the server only adds defaults.
    assert _contains(case["manifest"]["spec"], created["spec"]), created["spec"]


@pytest.mark.parametrize("doc", EXAMPLE_RESOURCES, ids=_example_id)
def test_every_example_resource_is_admitted(admission: Admission, doc: dict[str, Any]) -> None:
    created = admission.create(doc["kind"], doc)
    assert _contains(doc["spec"], created["spec"]), created["spec"]


def test_the_catalogue_covers_every_kind_with_enough_rejections() -> None:
    assert len(REJECTED) >= MIN_REJECTIONS
    assert {case["kind"] for case in REJECTED} == set(CRDS)
    assert {case["kind"] for case in ACCEPTED} == set(CRDS)
    ids = [case["id"] for case in REJECTED + ACCEPTED]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    # Ids become object names, so they must be valid ones.
    assert [i for i in ids if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", i)] == []
    assert [case["id"] for case in REJECTED if not case.get("expect")] == []
    assert [case["id"] for case in REJECTED + ACCEPTED if "spec" not in case["manifest"]] == []
    assert len(EXAMPLE_RESOURCES) >= len(CRDS)


def test_every_crd_rule_has_a_message_that_some_rejected_case_quotes() -> None:
    untested, silent = [], []
    for kind, crd in CRDS.items():
        expects = [case["expect"] for case in REJECTED if case["kind"] == kind]
        for version in crd["spec"]["versions"]:
            for rule in _rules(version["schema"]["openAPIV3Schema"]):
                message = " ".join(str(rule.get("message", "")).split())
                if not message:
                    silent.append((kind, rule["rule"]))
                elif not any(message in expect for expect in expects):
                    untested.append((kind, message))
    assert silent == [], "every CEL rule needs a message that says what to do"
    assert untested == [], "add a rejected case quoting each of these rule messages"
