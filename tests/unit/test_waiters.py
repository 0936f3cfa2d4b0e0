"""The rollout waiters index: who a workload's watch event wakes, and nothing left behind."""

from __future__ import annotations

from auth0_rotator.waiters import RolloutWaiters


def test_an_event_wakes_exactly_the_resources_waiting_for_that_workload() -> None:
    waiters = RolloutWaiters()
    web, worker = ("ns", "Deployment", "web"), ("ns", "StatefulSet", "worker")
    waiters.wait(("ns", "a"), [web])
    waiters.wait(("ns", "b"), [web, worker])
    assert waiters.waiting_for(web) == {("ns", "a"), ("ns", "b")}
    assert waiters.waiting_for(worker) == {("ns", "b")}
    assert waiters.waiting_for(("other", "Deployment", "web")) == set()
    # A new wait replaces the old one: b's web rollout is done, worker's not.
    waiters.wait(("ns", "b"), [worker])
    assert waiters.waiting_for(web) == {("ns", "a")}


def test_completed_and_deleted_resources_leave_nothing_behind() -> None:
    waiters = RolloutWaiters()
    for n in range(1000):
        waiters.wait(("ns", f"r{n}"), [("ns", "Deployment", f"d{n % 10}")])
    assert len(waiters) == 1000
    for n in range(1000):
        waiters.done(("ns", f"r{n}"))
    waiters.wait(("ns", "x"), [])
    assert len(waiters) == 0
    assert waiters._by_workload == {}
