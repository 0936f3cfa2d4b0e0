"""Workload restarts after a rotation, tracked until the rollout completes (SPEC §3)."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from tests.integration.operator.harness import FakeTenant, Kube, a0cs_body, wait_for

REVISION = "auth0rotator.dev/secret-revision"


def _pod_template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }


def _create(api: client.ApiClient, ns: str, kind: str, name: str, **extra: Any) -> None:
    apps = client.AppsV1Api(api)
    labels = extra.pop("labels", {})
    body = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name),
            **extra,
        },
    }
    create: Any = {
        "Deployment": apps.create_namespaced_deployment,
        "StatefulSet": apps.create_namespaced_stateful_set,
        "DaemonSet": apps.create_namespaced_daemon_set,
    }[kind]
    create(ns, body)


def _template_revision(api: client.ApiClient, ns: str, kind: str, name: str) -> str | None:
    apps = client.AppsV1Api(api)
    read: Any = {
        "Deployment": apps.read_namespaced_deployment,
        "StatefulSet": apps.read_namespaced_stateful_set,
        "DaemonSet": apps.read_namespaced_daemon_set,
    }[kind]
    annotations = read(name, ns).spec.template.metadata.annotations or {}
    value: str | None = annotations.get(REVISION)
    return value


def _rollout_done(kube: Kube, ns: str, name: str) -> dict[str, Any] | None:
    status = kube.get(ns, name).get("status") or {}
    conditions = status.get("conditions") or []
    done: dict[str, Any] = next((c for c in conditions if c["type"] == "RolloutComplete"), {})
    return status if done.get("status") == "True" else None


def test_deployment_statefulset_and_daemonset_roll_to_the_new_revision(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    _create(api, tenant_ns, "Deployment", "web", replicas=2)
    _create(api, tenant_ns, "StatefulSet", "db", replicas=1, serviceName="db")
    _create(api, tenant_ns, "DaemonSet", "agent")
    targets = [
        {"kind": "Deployment", "name": "web"},
        {"kind": "StatefulSet", "name": "db"},
        {"kind": "DaemonSet", "name": "agent"},
    ]
    kube.create(tenant_ns, a0cs_body("app", app_id, restartTargets=targets))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    revision = kube.wait_ready(tenant_ns, "app", reason="Rotated")["secretRevision"]

    status = wait_for(lambda: _rollout_done(kube, tenant_ns, "app"), 120, "RolloutComplete")

    for t in targets:
        assert _template_revision(api, tenant_ns, t["kind"], t["name"]) == revision
    assert {(t["kind"], t["name"], t["ready"]) for t in status["targets"]} == {
        ("Deployment", "web", True),
        ("StatefulSet", "db", True),
        ("DaemonSet", "agent", True),
    }
    pods = client.CoreV1Api(api).list_namespaced_pod(tenant_ns, label_selector="app=web").items
    running = [p for p in pods if p.metadata.deletion_timestamp is None]
    assert len(running) == 2
    assert all(p.metadata.annotations.get(REVISION) == revision for p in running)


def _event_reasons(api: client.ApiClient, ns: str, kind: str, name: str) -> list[str]:
    events = (
        client.CoreV1Api(api)
        .list_namespaced_event(
            ns, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"
        )
        .items
    )
    return [str(e.reason) for e in events]


def test_each_restart_is_an_event_on_the_resource_and_on_the_workload(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    _create(api, tenant_ns, "Deployment", "web", replicas=1)
    target = {"kind": "Deployment", "name": "web"}
    kube.create(tenant_ns, a0cs_body("app", app_id, restartTargets=[target]))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    revision = kube.wait_ready(tenant_ns, "app", reason="Rotated")["secretRevision"]
    wait_for(lambda: _rollout_done(kube, tenant_ns, "app"), 90, "RolloutComplete")

    def resource_events() -> list[str] | None:
        reasons = _event_reasons(api, tenant_ns, "Auth0ClientSecret", "app")
        return reasons if "RolloutComplete" in reasons else None

    reasons = wait_for(resource_events, 20, "events on the resource")
    # Event timestamps have one-second resolution, so only presence is asserted
    # here; the order of posting is covered by the unit tests of the event sink.
    assert {"RotationStarted", "Rotated", "Restarted", "RolloutComplete"} <= set(reasons)
    assert reasons.count("Restarted") == 1
    workload = wait_for(
        lambda: _event_reasons(api, tenant_ns, "Deployment", "web"), 20, "event on the Deployment"
    )
    assert workload.count("SecretRotated") == 1
    message = str(
        client.CoreV1Api(api)
        .list_namespaced_event(tenant_ns, field_selector="reason=SecretRotated")
        .items[0]
        .message
    )
    assert revision in message and "app" in message


def test_selector_targets_every_matching_workload(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    for name in ("a", "b"):
        _create(api, tenant_ns, "Deployment", name, replicas=1, labels={"uses": "auth0"})
    _create(api, tenant_ns, "Deployment", "other", replicas=1)
    target = {"kind": "Deployment", "selector": {"matchLabels": {"uses": "auth0"}}}
    kube.create(tenant_ns, a0cs_body("app", app_id, restartTargets=[target]))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    revision = kube.wait_ready(tenant_ns, "app", reason="Rotated")["secretRevision"]
    wait_for(lambda: _rollout_done(kube, tenant_ns, "app"), 90, "RolloutComplete")
    assert _template_revision(api, tenant_ns, "Deployment", "a") == revision
    assert _template_revision(api, tenant_ns, "Deployment", "b") == revision
    assert _template_revision(api, tenant_ns, "Deployment", "other") is None


def test_missing_target_is_reported_but_the_secret_is_written(
    tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    targets = [{"kind": "Deployment", "name": "ghost"}]
    kube.create(tenant_ns, a0cs_body("app", app_id, restartTargets=targets))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    condition = wait_for(
        lambda: (
            (c := kube.condition(tenant_ns, "app", "RolloutComplete")).get("reason")
            == "TargetNotFound"
            and c
        ),
        30,
        "TargetNotFound",
    )
    assert "ghost" in condition["message"]
    data = kube.secret(tenant_ns, "app")
    assert data is not None and data["client_secret"] == fake_tenant.client(app_id)["client_secret"]


def test_two_quick_rotations_restart_twice(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    _create(api, tenant_ns, "Deployment", "web", replicas=1)
    kube.create(
        tenant_ns, a0cs_body("app", app_id, restartTargets=[{"kind": "Deployment", "name": "web"}])
    )
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    seen: list[str] = []
    for value in ("1", "2"):
        kube.annotate_rotate(tenant_ns, "app", value)

        def handled(v: str = value) -> bool:
            status = kube.get(tenant_ns, "app").get("status") or {}
            return bool(status.get("lastRotateRequest") == v and not status.get("rotation"))

        wait_for(handled, 30, f"rotation {value}")
        revision = str(kube.get(tenant_ns, "app")["status"]["secretRevision"])

        def restarted(r: str = revision) -> bool:
            return _template_revision(api, tenant_ns, "Deployment", "web") == r

        wait_for(restarted, 30, "restart")
        seen.append(revision)
    assert len(set(seen)) == 2
    sets = client.AppsV1Api(api).list_namespaced_replica_set(tenant_ns).items
    assert len(sets) == 3  # the original and one per rotation


def test_paused_deployment_is_reported_as_rollout_paused(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    _create(api, tenant_ns, "Deployment", "web", replicas=1, paused=True)
    kube.create(
        tenant_ns, a0cs_body("app", app_id, restartTargets=[{"kind": "Deployment", "name": "web"}])
    )
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    condition = wait_for(
        lambda: (
            (c := kube.condition(tenant_ns, "app", "RolloutComplete")).get("reason")
            == "RolloutPaused"
            and c
        ),
        30,
        "RolloutPaused",
    )
    assert "web" in condition["message"]


def test_two_resources_sharing_a_deployment_keep_both_revisions_without_ping_pong(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    other = f"{app_id}-o"
    fake_tenant.create_client(other)
    _create(api, tenant_ns, "Deployment", "web", replicas=1)
    target = [{"kind": "Deployment", "name": "web"}]
    kube.create(tenant_ns, a0cs_body("one", app_id, restartTargets=target))
    kube.create(tenant_ns, a0cs_body("two", other, restartTargets=target))
    for name in ("one", "two"):
        kube.wait_ready(tenant_ns, name, reason="Fetched")
        kube.annotate_rotate(tenant_ns, name, "1")
    revisions = {
        kube.wait_ready(tenant_ns, n, reason="Rotated")["secretRevision"] for n in ("one", "two")
    }
    for name in ("one", "two"):

        def done(n: str = name) -> dict[str, Any] | None:
            return _rollout_done(kube, tenant_ns, n)

        wait_for(done, 60, f"{name} RolloutComplete")
    value = _template_revision(api, tenant_ns, "Deployment", "web") or ""
    assert set(value.split(",")) == revisions
    sets_now = len(client.AppsV1Api(api).list_namespaced_replica_set(tenant_ns).items)
    time.sleep(5)  # a ping-pong would keep creating ReplicaSets
    assert len(client.AppsV1Api(api).list_namespaced_replica_set(tenant_ns).items) == sets_now
    assert sets_now <= 3


def test_rollout_that_never_becomes_ready_is_reported_as_stalled(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    _create(api, tenant_ns, "Deployment", "stuck", replicas=1)
    # kwok leaves pods with this annotation alone: they never become Ready.
    client.AppsV1Api(api).patch_namespaced_deployment(
        "stuck",
        tenant_ns,
        {"spec": {"template": {"metadata": {"annotations": {"kwok.x-k8s.io/status": "custom"}}}}},
    )
    kube.create(
        tenant_ns,
        a0cs_body("app", app_id, restartTargets=[{"kind": "Deployment", "name": "stuck"}]),
    )
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    condition = wait_for(
        lambda: (
            (c := kube.condition(tenant_ns, "app", "RolloutComplete")).get("reason")
            == "RolloutStalled"
            and c
        ),
        60,
        "RolloutStalled",
    )
    assert "stuck" in condition["message"]


def test_three_resources_rotating_together_restart_their_deployment_once(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str, fake_tenant: FakeTenant
) -> None:
    _create(api, tenant_ns, "Deployment", "web", replicas=1)
    target = [{"kind": "Deployment", "name": "web"}]
    names = ("r1", "r2", "r3")
    for i, name in enumerate(names):
        client_id = f"{app_id}-{i}"
        fake_tenant.create_client(client_id)
        kube.create(tenant_ns, a0cs_body(name, client_id, restartTargets=target))
    for name in names:
        kube.wait_ready(tenant_ns, name, reason="Fetched")
    wait_for(
        lambda: len(client.AppsV1Api(api).list_namespaced_replica_set(tenant_ns).items) == 1,
        30,
        "first ReplicaSet",
    )
    for name in names:
        kube.annotate_rotate(tenant_ns, name, "storm")
    revisions = {kube.wait_ready(tenant_ns, n, reason="Rotated")["secretRevision"] for n in names}
    for name in names:

        def done(n: str = name) -> dict[str, Any] | None:
            return _rollout_done(kube, tenant_ns, n)

        wait_for(done, 60, f"{name} RolloutComplete")
    value = _template_revision(api, tenant_ns, "Deployment", "web") or ""
    assert set(value.split(",")) == revisions
    sets = client.AppsV1Api(api).list_namespaced_replica_set(tenant_ns).items
    assert len(sets) == 2, "one restart for the three rotations"


def test_on_delete_statefulset_is_reported_not_silently_stalled(
    api: client.ApiClient, tenant_ns: str, kube: Kube, app_id: str
) -> None:
    _create(
        api,
        tenant_ns,
        "StatefulSet",
        "db",
        replicas=1,
        serviceName="db",
        updateStrategy={"type": "OnDelete"},
    )
    target = [{"kind": "StatefulSet", "name": "db"}]
    kube.create(tenant_ns, a0cs_body("app", app_id, restartTargets=target))
    kube.wait_ready(tenant_ns, "app", reason="Fetched")
    kube.annotate_rotate(tenant_ns, "app", "1")
    kube.wait_ready(tenant_ns, "app", reason="Rotated")
    condition = wait_for(
        lambda: (
            (c := kube.condition(tenant_ns, "app", "RolloutComplete")).get("reason")
            == "OnDeleteStrategy"
            and c
        ),
        30,
        "OnDeleteStrategy",
    )
    assert "deleted" in condition["message"]


def test_an_empty_selector_is_refused_at_admission(tenant_ns: str, kube: Kube) -> None:
    target = [{"kind": "Deployment", "selector": {}}]
    try:
        kube.create(tenant_ns, a0cs_body("app", "cid", restartTargets=target))
    except client.exceptions.ApiException as exc:
        assert exc.status == 422
        assert "empty selector would select every workload" in str(exc.body)
    else:
        raise AssertionError("an empty selector was admitted")
