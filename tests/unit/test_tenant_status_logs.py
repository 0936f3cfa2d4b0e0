"""The tenant path never logs the text of a Kubernetes API error (headers, bodies)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from kubernetes.aio.client import ApiException

from auth0_rotator.kube import KubeStore
from auth0_rotator.model import TenantRef
from auth0_rotator.schedule import SystemClock
from auth0_rotator.tenant_status import TenantStatus
from auth0_rotator.tenants import TenantRegistry

REF = TenantRef("Auth0Tenant", "default", "ns")
BODY = {
    "metadata": {"name": "default", "namespace": "ns", "generation": 1},
    "spec": {"domain": "acme.auth0.com", "credentials": {"secretRef": {"name": "c"}}},
}


def _api_error() -> ApiException:
    error = ApiException(status=500, reason="Internal Server Error")
    error.body = '{"message": "BODY-MARKER etcd leader changed"}'
    error.headers = {"Audit-Id": "HEADER-MARKER"}
    return error


class _Tenants:
    @contextlib.asynccontextmanager
    async def connect(self, tenant: object) -> AsyncIterator[None]:
        if tenant is not None:
            raise _api_error()
        yield

    def observe(self, ref: TenantRef, body: dict[str, Any]) -> None:
        pass


class _Store:
    async def patch_tenant_status(self, ref: TenantRef, status: dict[str, Any]) -> None:
        raise _api_error()


async def test_an_api_error_on_the_tenant_path_is_logged_by_type_and_status_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    status = TenantStatus(
        cast(TenantRegistry, _Tenants()), cast(KubeStore, _Store()), SystemClock(), print
    )
    with caplog.at_level(logging.DEBUG):
        await status.on_event(REF, "ADDED", BODY)  # nothing escapes to kopf's logger
    assert "ApiException HTTP 500" in caplog.text
    assert "MARKER" not in caplog.text
    assert all(record.exc_info is None for record in caplog.records)
