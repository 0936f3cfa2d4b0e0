"""Announced rotation (``announce: true``) end to end: real control plane, fake tenant over HTTPS.

The headline assertion: consumers applying the fallback rule (``client_secret``,
and on refusal ``next_client_secret``) with the credentials of their pod's
generation never fail a token request through a whole rotation, while a
consumer without the fallback does fail (so the test can fail). Also: the
announcement's rollout comes before Auth0 changes and the second rollout
after (call-log order), a stalled announcement waits with Auth0 untouched,
and a trigger arriving meanwhile runs afterwards, once; scheduled and
spec-change rotations are announced too; a Secret deleted during the
announcement comes back with both values.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from tests.integration.operator.conftest import RunningOperator
from tests.integration.operator.consumers import PodConsumers
from tests.integration.operator.harness import (
    FakeTenant,
    Kube,
    a0cs_body,
    dump,
    wait_for,
)

pytestmark = pytest.mark.integration

Held = tuple[str, str | None]
"""(client_secret, next_client_secret) as a pod read them at start."""


def _closed(kube: Kube, namespace: str, name: str, request: str) -> dict[str, Any] | None:
    status = kube.get(namespace, name).get("status") or {}
    done = status.get("lastRotateRequest") == request and not status.get("rotation")
    return status if done else None


def _rotations(kube: Kube, namespace: str, count: int) -> dict[str, Any] | None:
    """The status of ``app`` once its ``count``-th rotation has closed."""
    status = kube.get(namespace, "app").get("status") or {}
    done = status.get("rotationCount") == count and not status.get("rotation")
    return status if done else None


def test_consumers_that_fall_back_never_fail_and_auth0_changes_after_the_announcement(
    api: client.ApiClient,
    kube: Kube,
    fake_tenant: FakeTenant,
    tenant_ns: str,
    web: str,
    app_id: str,
    operator: RunningOperator,
) -> None:
    kube.create(
        tenant_ns,
        a0cs_body(
            "app",
            app_id,
            announce=True,
            keys={"previousClientSecret": "previous_client_secret"},
            restartTargets=[{"kind": "Deployment", "name": web}],
        ),
    )
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    old = fake_tenant.client(app_id)["client_secret"]

    def fallback(held: Held) -> str | None:
        current, upcoming = held
        if fake_tenant.secret_status(app_id, current) == 403:  # authenticated, no API grant
            return "client_secret"
        if upcoming and fake_tenant.secret_status(app_id, upcoming) == 403:
            return "next_client_secret"
        return None

    def without_fallback(held: Held) -> str | None:
        return "client_secret" if fake_tenant.secret_status(app_id, held[0]) == 403 else None

    def from_secret(data: dict[str, str]) -> Held:
        return data["client_secret"], data.get("next_client_secret")

    careful = PodConsumers(
        api, kube, tenant_ns, web, "app", initial=(old, None), from_secret=from_secret,
        attempt=fallback,
    )  # fmt: skip
    naive = PodConsumers(
        api, kube, tenant_ns, web, "app", initial=(old, None), from_secret=from_secret,
        attempt=without_fallback,
    )  # fmt: skip
    careful.start()
    naive.start()
    try:
        kube.annotate_rotate(tenant_ns, "app", "announced")
        status = wait_for(lambda: _closed(kube, tenant_ns, "app", "announced"), 90, "the rotation")
        wait_for(
            lambda: kube.condition(tenant_ns, "app", "RolloutComplete").get("status") == "True",
            60,
            "the second rollout",
        )
    finally:
        careful.stop()
        naive.stop()
    assert careful.failures == [], careful.report()
    assert careful.worked.get("next_client_secret"), careful.report()  # the fallback was used
    assert naive.failures, "without the fallback a consumer fails: " + naive.report()

    state = fake_tenant.client(app_id)
    assert state["secret_changes"] == 1
    data = kube.secret(tenant_ns, "app")
    assert data is not None and "next_client_secret" not in data
    assert data["client_secret"] == state["client_secret"] != old
    assert data["previous_client_secret"] == old
    # Order: the announcement's rollout was complete (no pod of before it still ran) when
    # Auth0 changed, and every pod of the final revision started after that. (When an
    # announced pod was first *seen* says nothing: the consumers poll, and a CI run saw
    # one 28 ms after the change although the operator had waited for its rollout.)
    (patch,) = [c for c in fake_tenant.calls(app_id) if c["endpoint"] == "patch-client"]
    seen = careful.seen.values()
    assert max(s.last for s in seen if s.initial) < patch["time"], careful.report()
    announced = [s for s in seen if s.revision.endswith(".announce")]
    final = [s for s in seen if s.revision == status["secretRevision"]]
    assert announced and final, [s.revision for s in seen]
    assert patch["time"] < min(s.first for s in final)


def test_a_stalled_announcement_waits_with_auth0_untouched_and_a_later_trigger_runs_after(
    api: client.ApiClient,
    kube: Kube,
    fake_tenant: FakeTenant,
    tenant_ns: str,
    app_id: str,
    operator: RunningOperator,
    stuck: str,
) -> None:
    kube.create(
        tenant_ns,
        a0cs_body(
            "app", app_id, announce=True, restartTargets=[{"kind": "Deployment", "name": "stuck"}]
        ),
    )
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    old = fake_tenant.client(app_id)["client_secret"]
    kube.annotate_rotate(tenant_ns, "app", "first")
    waiting = wait_for(
        lambda: (
            (c := kube.condition(tenant_ns, "app", "Rotating"))
            and c.get("reason") == "WaitingForRollout"
            and c
        ),
        60,
        "the announcement waiting",
    )
    assert "Auth0 is unchanged" in waiting["message"], dump(waiting)
    kube.annotate_rotate(tenant_ns, "app", "second")  # arrives while it waits
    status = kube.get(tenant_ns, "app")["status"]
    assert status["rotation"]["phase"] == "Announced" and status["lastRotateRequest"] == "first"
    assert fake_tenant.client(app_id)["secret_changes"] == 0
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == old and data["next_client_secret"] != old
    # The documented way out: take the stuck workload out of restartTargets.
    kube.patch(tenant_ns, "app", {"spec": {"restartTargets": None}})
    status = wait_for(lambda: _closed(kube, tenant_ns, "app", "second"), 90, "the second trigger")
    assert status["rotationCount"] == 2
    assert fake_tenant.client(app_id)["secret_changes"] == 2
    data = kube.secret(tenant_ns, "app")
    assert data is not None and "next_client_secret" not in data
    assert data["client_secret"] == fake_tenant.client(app_id)["client_secret"]


def _revisions(api: client.ApiClient, namespace: str, app: str) -> set[str]:
    """The secret revisions the Deployment's ReplicaSets were created with (its rollout history)."""
    sets = client.AppsV1Api(api).list_namespaced_replica_set(namespace, label_selector=f"app={app}")
    return {
        (rs.spec.template.metadata.annotations or {}).get("auth0rotator.dev/secret-revision", "")
        for rs in sets.items
    }


def test_scheduled_and_spec_change_rotations_are_announced_too(
    api: client.ApiClient,
    kube: Kube,
    fake_tenant: FakeTenant,
    tenant_ns: str,
    web: str,
    app_id: str,
    operator: RunningOperator,
) -> None:
    spec = {"schedule": "0 3 * * *", "minInterval": "1m", "announce": True}
    targets = [{"kind": "Deployment", "name": web}]
    kube.create(tenant_ns, a0cs_body("app", app_id, restartTargets=targets, **spec))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")

    operator.advance(timedelta(days=1))  # the 03:00 fire
    first = wait_for(lambda: _rotations(kube, tenant_ns, 1), 60, "the scheduled rotation")
    # The second restart may wait for the restart window; let it happen first (else the
    # next announcement's restart would rightly take its place).
    operator.advance(timedelta(minutes=2))  # past the restart window and minInterval
    wait_for(
        lambda: first["secretRevision"] in _revisions(api, tenant_ns, web),
        60,
        "the scheduled rotation's second restart",
    )
    kube.patch(tenant_ns, "app", {"spec": {"secretName": "app-renamed"}})  # rotates (SPEC §2)
    second = wait_for(lambda: _rotations(kube, tenant_ns, 2), 60, "the spec-change rotation")
    assert fake_tenant.client(app_id)["secret_changes"] == 2
    operator.advance(timedelta(minutes=2))
    revisions = wait_for(
        lambda: (r := _revisions(api, tenant_ns, web)) and second["secretRevision"] in r and r,
        60,
        "the spec-change rotation's second restart",
    )
    for status in (first, second):
        rotation = status["secretRevision"]
        assert {f"{rotation}.announce", rotation} <= revisions, (rotation, revisions)
    data = kube.secret(tenant_ns, "app-renamed")
    assert data is not None and "next_client_secret" not in data
    assert data["client_secret"] == fake_tenant.client(app_id)["client_secret"]


def test_a_deleted_secret_during_the_announcement_comes_back_with_both_values(
    api: client.ApiClient,
    kube: Kube,
    fake_tenant: FakeTenant,
    tenant_ns: str,
    app_id: str,
    operator: RunningOperator,
    stuck: str,
) -> None:
    targets = [{"kind": "Deployment", "name": "stuck"}]
    kube.create(tenant_ns, a0cs_body("app", app_id, announce=True, restartTargets=targets))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    old = fake_tenant.client(app_id)["client_secret"]
    kube.annotate_rotate(tenant_ns, "app", "first")
    wait_for(
        lambda: kube.condition(tenant_ns, "app", "Rotating").get("reason") == "WaitingForRollout",
        60,
        "the announcement waiting",
    )
    announced = kube.secret(tenant_ns, "app")
    assert announced is not None and announced["client_secret"] == old
    client.CoreV1Api(api).delete_namespaced_secret("app", tenant_ns)
    restored = wait_for(lambda: kube.secret(tenant_ns, "app"), 30, "the Secret restored")
    assert restored["client_secret"] == old, "the current secret still works in Auth0"
    assert restored["next_client_secret"] == announced["next_client_secret"]
    assert fake_tenant.client(app_id)["secret_changes"] == 0
