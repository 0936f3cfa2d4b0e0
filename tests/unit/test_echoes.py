"""Echoes: the watch event of our own write is skipped only when it shows nothing new."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from auth0_rotator.controller import Controller
from auth0_rotator.kube import KubeStore
from auth0_rotator.reporting import Reporter, _merged
from auth0_rotator.schedule import SystemClock
from auth0_rotator.settings import EngineSettings


def test_each_expected_version_is_an_echo_once() -> None:
    store = KubeStore(cast(Any, None))
    store.expect_echo("secrets", "ns", "app", "7")
    assert not store.is_echo("secrets", "ns", "app", "6")  # someone else's change
    assert not store.is_echo("secrets", "ns", "other", "7")
    assert store.is_echo("secrets", "ns", "app", "7")
    assert not store.is_echo("secrets", "ns", "app", "7")
    store.expect_echo("secrets", "ns", "app", "9")
    assert not store.is_deletion_echo("secrets", "ns", "app")  # deleted by someone else
    assert not store.is_echo("secrets", "ns", "app", "9")  # and forgotten


class _Store:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.expected: list[tuple[str, str, str, str]] = []

    async def patch_status(self, *_: Any, **__: Any) -> dict[str, Any]:
        return self.answer

    def expect_echo(self, kind: str, namespace: str, name: str, version: str) -> None:
        self.expected.append((kind, namespace, name, version))


def _meta(**changes: Any) -> dict[str, Any]:
    meta = {
        "namespace": "ns",
        "name": "app",
        "uid": "u",
        "generation": 2,
        "annotations": {"a": "1"},
        "labels": {},
        "resourceVersion": "10",
    }
    meta.update(changes)
    return meta


@pytest.mark.parametrize(
    ("changed", "echo"),
    [
        ({}, True),
        # A status write by someone else (another process's journal):
        ({"status": {"x": 1, "observedGeneration": 2, "rotation": {"id": "theirs"}}}, False),
        ({"generation": 3}, False),  # the spec changed while we reconciled
        ({"annotations": {"a": "1", "auth0rotator.dev/rotate": "now"}}, False),
        ({"deletionTimestamp": "2026-11-29T00:00:00Z"}, False),
    ],
)
async def test_status_write_is_expected_back_only_if_nothing_else_changed(
    changed: dict[str, Any], echo: bool
) -> None:
    changed = dict(changed)
    status = changed.pop("status", {"x": 1, "observedGeneration": 2})
    store = _Store({"metadata": _meta(resourceVersion="11", **changed), "status": status})
    reporter = Reporter(cast(KubeStore, store), EngineSettings())
    obj: dict[str, Any] = {"metadata": _meta(), "status": {}}
    await reporter.patch(obj, {"x": 1})
    assert store.expected == ([("auth0clientsecrets", "ns", "app", "11")] if echo else [])
    assert obj["metadata"]["resourceVersion"] == "11"


def _answer(value: bool) -> Callable[[], bool]:
    return lambda: value


async def _controller_run(events_during: list[bool | None]) -> int:
    """Reconciles of one key when ``events_during`` arrive while its first reconcile runs.

    Each entry is an event: ``True``/``False`` an echo check's answer, ``None`` no check.
    """
    runs = 0
    started, release = asyncio.Event(), asyncio.Event()

    async def reconcile(namespace: str, name: str, seen: object) -> None:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()

    controller = Controller(reconcile, SystemClock(), workers=1)
    await controller.start()
    try:
        controller.enqueue(("ns", "app"))
        await started.wait()
        for answer in events_during:
            controller.enqueue(("ns", "app"), None if answer is None else _answer(answer))
        release.set()
        # Finished reconciles catch up with started ones and nothing is left queued.
        while controller.reconciles < runs or controller.queued:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return runs
    finally:
        await controller.stop()


@pytest.mark.parametrize(
    ("events", "runs"),
    [
        ([True, True], 1),  # only echoes of the reconcile's own writes
        ([True, False], 2),  # and someone else's change
        ([None], 2),  # a change without a check
        ([], 1),
    ],
)
async def test_changes_during_a_reconcile_rerun_it_unless_all_are_echoes(
    events: list[bool | None], runs: int
) -> None:
    assert await _controller_run(events) == runs


async def test_an_echo_of_an_idle_key_is_dropped_and_a_change_is_queued() -> None:
    controller = Controller(lambda *_: asyncio.sleep(0, None), SystemClock(), workers=1)
    controller.enqueue(("ns", "a"), lambda: True)
    controller.enqueue(("ns", "b"), lambda: False)
    assert controller.queued == 1


def test_merge_patch_result_is_predicted() -> None:
    base = {"a": 1, "rotation": {"id": "r", "phase": "Staged"}, "conditions": [1]}
    patch = {"rotation": {"phase": "Applied"}, "a": None, "conditions": [2], "new": {"k": "v"}}
    assert _merged(base, patch) == {
        "rotation": {"id": "r", "phase": "Applied"},
        "conditions": [2],
        "new": {"k": "v"},
    }
    assert base["rotation"] == {"id": "r", "phase": "Staged"}  # not modified in place
