"""The Kubernetes API client ignores proxy variables and ~/.netrc, as kopf's watches do.

aiohttp's ``trust_env`` makes every request look both up in a worker thread;
at 10,000 resources that was a third of the operator's CPU (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from kubernetes.aio import client as aio_client

from auth0_rotator.handlers import cluster_configuration
from auth0_rotator.kube import KubeStore


@pytest.fixture
async def apiserver() -> AsyncIterator[str]:
    """A stand-in API server on 127.0.0.1 that serves one Secret over plain HTTP."""

    async def secret(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": request.match_info["name"], "namespace": "ns"},
                "data": {"k": "dg=="},
            }
        )

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/ns/secrets/{name}", secret)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_requests_go_direct_even_with_a_proxy_in_the_environment(
    apiserver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{apiserver}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
"""
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # A proxy nobody listens on: a client that honoured it would fail to connect.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    api = aio_client.ApiClient(await cluster_configuration())
    try:
        secret = await KubeStore(api).read_secret("ns", "creds")
    finally:
        await api.close()
    assert secret is not None
    assert secret["metadata"]["name"] == "creds"
