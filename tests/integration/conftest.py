"""Fixtures for tests against the local control plane: API clients and a namespace per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes import client, config

from auth0_rotator_dev.devcluster import ControlPlane

T = TypeVar("T")
Eventually = Callable[..., Any]


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """An admin API client (sync; tests are not inside kopf's event loop)."""
    api_client = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace, deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def _eventually(check: Callable[[], T | None], timeout: float = 60, what: str = "") -> T:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last: {last!r}")


@pytest.fixture
def eventually() -> Eventually:
    """Return the polling helper ``eventually(check, timeout=60, what="...")``."""
    return _eventually
