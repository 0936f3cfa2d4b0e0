"""A rotation's first and last steps, driven in-process against the real API server.

The engine stages a new value before it claims (create-only), so a lost claim
must leave nothing behind and never remove what another writer put there. It
reads restart targets ahead, so a target that changed meanwhile is read again
and restarted at once, not after the rollout poll. ``c-*`` namespaces are
outside the in-process operator's scope: only the engine made here acts.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.aio import client as aio_client

from auth0_rotator.access import DomainAllowList
from auth0_rotator.engine import RotationEngine
from auth0_rotator.kube import KubeStore
from auth0_rotator.labels import REVISION_ANNOTATION
from auth0_rotator.model import GROUP, VERSION
from auth0_rotator.rotation.staging import staging_secret_name
from auth0_rotator.settings import EngineSettings
from auth0_rotator.tenants import TenantRegistry
from tests.integration.operator.conftest import TEST_ENGINE
from tests.integration.operator.harness import (
    DOMAIN,
    FakeTenant,
    Kube,
    a0cs_body,
    make_deployment,
)


@pytest.fixture
async def engine(
    aio_api: aio_client.ApiClient, fake_tenant: FakeTenant
) -> AsyncIterator[RotationEngine]:
    store = KubeStore(aio_api)
    tenants = TenantRegistry(
        store,
        extra_ca_file=str(fake_tenant.ca_file),
        allowed_domains=DomainAllowList.parse([DOMAIN]),
    )
    settings = {**TEST_ENGINE, "restart_window": timedelta(0)}
    yield RotationEngine(store, tenants, EngineSettings(identity="claim-test", **settings))
    await tenants.aclose()
    await store.aclose()


def _touch(kube: Kube, namespace: str) -> None:
    """Someone else changes the resource: any decision made on the old version is stale."""
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "auth0clientsecrets", "app", {"metadata": {"labels": {"x": "y"}}}
    )


def _patches(fake_tenant: FakeTenant, client_id: str) -> int:
    return sum(1 for c in fake_tenant.calls(f"clients/{client_id}") if c["method"] == "PATCH")


async def test_a_lost_claim_leaves_no_staging_secret_and_no_auth0_change(
    engine: RotationEngine, kube: Kube, fake_tenant: FakeTenant, crash_ns: str, app_id: str
) -> None:
    kube.create(crash_ns, a0cs_body("app", app_id, initialization="Rotate"))
    stale = kube.get(crash_ns, "app")
    _touch(kube, crash_ns)
    before = fake_tenant.client(app_id)["client_secret"]

    await engine.reconcile(crash_ns, "app", stale)

    assert kube.secret(crash_ns, staging_secret_name("app")) is None
    assert not (kube.get(crash_ns, "app").get("status") or {}).get("rotation")
    assert _patches(fake_tenant, app_id) == 0
    assert fake_tenant.client(app_id)["client_secret"] == before

    # Read afresh, the same trigger rotates once.
    await engine.reconcile(crash_ns, "app")
    data = kube.secret(crash_ns, "app")
    assert data is not None
    assert data["client_secret"] == fake_tenant.client(app_id)["client_secret"] != before
    assert fake_tenant.client(app_id)["secret_changes"] == 1
    assert kube.secret(crash_ns, staging_secret_name("app")) is None


async def test_a_lost_claim_keeps_a_staging_secret_someone_wrote_since(
    engine: RotationEngine,
    kube: Kube,
    fake_tenant: FakeTenant,
    crash_ns: str,
    app_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube.create(crash_ns, a0cs_body("app", app_id, initialization="Rotate"))
    stale = kube.get(crash_ns, "app")
    _touch(kube, crash_ns)
    staging = staging_secret_name("app")
    theirs = base64.b64encode(b"staged by the process that won the claim").decode()
    claim = engine.store.patch_status

    async def claim_after_another_writer(*args: Any, **kwargs: Any) -> dict[str, Any]:
        # Between our staging write and our claim, the winner rewrites the staging Secret.
        kube.core.patch_namespaced_secret(staging, crash_ns, {"data": {"value": theirs}})
        return await claim(*args, **kwargs)

    monkeypatch.setattr(engine.store, "patch_status", claim_after_another_writer)

    await engine.reconcile(crash_ns, "app", stale)

    left = kube.secret(crash_ns, staging)
    assert left is not None and left["value"] == "staged by the process that won the claim"
    assert _patches(fake_tenant, app_id) == 0


async def test_a_target_changed_since_it_was_read_ahead_is_restarted_at_once(
    engine: RotationEngine,
    api: client.ApiClient,
    kube: Kube,
    crash_ns: str,
    app_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apps = client.AppsV1Api(api)
    make_deployment(api, crash_ns, "web")
    targets = [{"kind": "Deployment", "name": "web"}]
    kube.create(crash_ns, a0cs_body("app", app_id, initialization="Rotate", restartTargets=targets))
    restart = engine.store.restart_workload
    attempts: list[str | None] = []

    async def restart_after_a_change(*args: Any, **kwargs: Any) -> None:
        attempts.append(kwargs.get("resource_version"))
        if len(attempts) == 1:
            # The Deployment changes after the engine read it (its status, in real life).
            apps.patch_namespaced_deployment("web", crash_ns, {"metadata": {"labels": {"x": "y"}}})
        await restart(*args, **kwargs)

    monkeypatch.setattr(engine.store, "restart_workload", restart_after_a_change)

    await engine.reconcile(crash_ns, "app")

    # Right after the reconcile, not a rollout poll later.
    status = kube.get(crash_ns, "app")["status"]
    revision = status["restartRevision"]
    template = apps.read_namespaced_deployment("web", crash_ns).spec.template.metadata
    assert revision in (template.annotations or {}).get(REVISION_ANNOTATION, "")
    assert len(attempts) == 2 and attempts[0] != attempts[1]
    assert status["targets"] == [
        {
            "kind": "Deployment",
            "name": "web",
            "restartedRevision": revision,
            "ready": False,
        }
    ]
