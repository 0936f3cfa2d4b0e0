"""Restarting the workloads that read a Secret, and telling when their rollout is complete.

Level-based, so crash-safe by construction (see :mod:`auth0_rotator.rollout`
for the pure part): ``status.restartRevision`` names the rotation the restart
targets must run; every reconcile patches the pod-template annotation of each
target that does not carry it yet (once: a target restarted already is never
patched again) and reports the rollout as ``RolloutComplete``, with
``status.targets``. Several resources restarting one workload within the
restart window restart it once (coalescing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from auth0_rotator.kube import Conflict, KubeError, KubeStore
from auth0_rotator.labels import REVISION_ANNOTATION, selector_matches, selector_string
from auth0_rotator.metrics import Metrics
from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.reporting import Reporter
from auth0_rotator.rollout import TargetState, merged_revisions, revisions, rollout_state
from auth0_rotator.schedule import parse_time
from auth0_rotator.settings import EngineSettings
from auth0_rotator.waiters import RolloutWaiters

__all__ = ["Restarter", "RolloutReport", "Targets"]

Targets = tuple[list[dict[str, Any]], list[tuple[str, str]]]
"""Restart targets as read: the workloads found, and (condition reason, message) problems."""


@dataclass
class RolloutReport:
    """What restarting targets found: the status to report and when to look again."""

    targets: list[dict[str, Any]]
    condition: tuple[str, str, str, str]
    """``("RolloutComplete", status, reason, message)``."""
    old: dict[str, Any]
    """The RolloutComplete condition the status had before."""
    since: datetime
    """The rotation the rollout is for (or now)."""
    wake: datetime | None

    def changed(self, status: dict[str, Any]) -> bool:
        """Whether ``status`` does not say this yet."""
        _, ok, reason, message = self.condition
        old = (self.old.get("status"), self.old.get("reason"), self.old.get("message"))
        return old != (ok, reason, message) or status.get("targets") != self.targets


class Restarter:
    """Restarts an Auth0ClientSecret's restart targets and reports their rollout."""

    def __init__(
        self,
        store: KubeStore,
        reporter: Reporter,
        settings: EngineSettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.reporter = reporter
        self.settings = settings
        self.metrics = metrics
        self.waiters = RolloutWaiters()
        """Workloads whose watch events wake the resources waiting for their rollout."""

    async def rollout(self, obj: dict[str, Any], spec: ClientSecretSpec) -> datetime | None:
        """Restart targets for the current rotation and report their rollout (SPEC §3)."""
        report = await self.progress(obj, spec)
        return None if report is None else report.wake

    async def progress(self, obj: dict[str, Any], spec: ClientSecretSpec) -> RolloutReport | None:
        """As :meth:`rollout`, returning the report (``None``: nothing to restart)."""
        report = await self.restart(obj, spec, obj.get("status") or {})
        if report is None:
            return None
        if report.changed(obj.get("status") or {}):
            await self.reporter.patch(
                obj,
                {
                    "targets": report.targets,
                    "conditions": self.reporter.conditions(obj, report.condition),
                },
            )
            await self.reported(obj, report)
        return report

    async def reported(self, obj: dict[str, Any], report: RolloutReport) -> None:
        """After ``report`` is in the status: its metric and, on a new reason, its Event."""
        _, ok, reason, message = report.condition
        if ok == "True" and report.old.get("status") != "True" and self.metrics is not None:
            self.metrics.rollout_completed((self.reporter.now - report.since).total_seconds())
        if report.old.get("reason") != reason and reason != "RollingOut":
            kind = "Normal" if ok == "True" else "Warning"
            await self.reporter.event(
                obj, kind, reason if ok == "False" else "RolloutComplete", message
            )

    async def restart(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        status: dict[str, Any],
        found: Targets | None = None,
    ) -> RolloutReport | None:
        """Restart what still needs it for ``status``; what the status should say about it.

        ``status.restartRevision`` names the value workloads must run: set by a
        completed rotation and by adopting another client, never by a drift
        restore (same value), so a pending restart cannot be skipped. ``status``
        may be ahead of ``obj``'s: a rotation restarts before it closes its journal.
        ``found`` is what :meth:`read` returned, if the caller read ahead.
        """
        revision = str(status.get("restartRevision") or "")
        if not spec.restart_targets or not revision:
            self.waiters.done((spec.namespace, spec.name))
            return None
        workloads, problems = found if found is not None else await self.read(spec)
        rotated = parse_time(status.get("lastRotationTime"))
        recorded = {
            (t.get("kind"), t.get("name")): t.get("restartedRevision")
            for t in status.get("targets") or []
        }
        states: list[TargetState] = []
        window_wake: datetime | None = None
        for workload in workloads:
            mine = recorded.get((workload["kind"], (workload.get("metadata") or {}).get("name")))
            state = rollout_state(workload, revision, mine)
            if state.restarted_revision == revision or mine == revision:
                # Restarted already (an annotation stripped by someone else is not
                # patched again: that would restart the workload over and over).
                states.append(replace(state, restarted_revision=revision))
                continue
            if state.on_delete:
                problems.append(
                    (
                        "OnDeleteStrategy",
                        f"{state.kind} {state.name} uses the OnDelete update strategy: its pods "
                        "must be deleted to pick up the new secret",
                    )
                )
            created = parse_time((workload.get("metadata") or {}).get("creationTimestamp"))
            if rotated is not None and created is not None and created > rotated:
                # Created after the rotation: it already reads the new value.
                states.append(replace(state, restarted_revision=revision, ready=True))
                continue
            if rotated is not None and self.reporter.now < rotated + self.settings.restart_window:
                # Wait for others rotating for the same workload to join this restart.
                states.append(state)
                window_wake = rotated + self.settings.restart_window
                continue
            annotations = ((workload["spec"].get("template") or {}).get("metadata") or {}).get(
                "annotations"
            ) or {}
            value = merged_revisions(annotations.get(REVISION_ANNOTATION), revision, mine)
            try:
                if self.settings.restart_window:
                    # Only a window lets others join: without one there is nothing to merge.
                    value = await self._coalesce(spec, workload, value)
                await self.store.restart_workload(
                    state.kind,
                    spec.namespace,
                    state.name,
                    {REVISION_ANNOTATION: value},
                    resource_version=workload["metadata"].get("resourceVersion"),
                )
            except Conflict:
                if found is not None:
                    # Read ahead and changed since (its status, say): read again, once.
                    # Workloads restarted already carry the revision and are skipped.
                    return await self.restart(obj, spec, status)
                states.append(state)
                window_wake = self.reporter.now + self.settings.rollout_poll
                continue
            except KubeError as exc:
                problems.append(
                    (
                        "RestartFailed",
                        f"cannot restart {state.kind} {state.name}: HTTP {exc.status}",
                    )
                )
                states.append(state)
                continue
            note = f"restarted {state.kind} {state.name} for secret revision {revision}"
            await self.reporter.event(obj, "Normal", "Restarted", note)
            await self.store.post_event(
                workload, "Normal", "SecretRotated", f"{note} ({spec.name})", self.reporter.now
            )
            states.append(replace(state, restarted_revision=revision, ready=False))
        last = rotated or self.reporter.now
        key = (spec.namespace, spec.name)
        if problems or not all(st.ready for st in states):
            # Events about these wake this resource (a named target not found yet too).
            waited = {(spec.namespace, st.kind, st.name) for st in states if not st.ready}
            present = {(st.kind, st.name) for st in states}
            waited |= {
                (spec.namespace, t["kind"], t["name"])
                for t in spec.restart_targets
                if t.get("name") and (t["kind"], t["name"]) not in present
            }
            self.waiters.wait(key, waited)
        else:
            self.waiters.done(key)
        if problems:
            reason, message = problems[0][0], "; ".join(p[1] for p in problems)
            ok, wake = "False", self.reporter.now + self.settings.retry_after
        elif all(st.ready for st in states):
            reason, message = "Complete", f"every target runs secret revision {revision}"
            ok, wake = "True", None
        elif any(st.paused for st in states):
            paused = ", ".join(st.name for st in states if st.paused)
            reason, message = "RolloutPaused", f"paused: {paused}; resume to finish the rollout"
            ok, wake = "False", self.reporter.now + self.settings.recheck_after
        elif self.reporter.now > last + self.settings.rollout_deadline:
            waiting = ", ".join(f"{st.kind} {st.name}" for st in states if not st.ready)
            reason = "RolloutStalled"
            message = f"not rolled out after {self.settings.rollout_deadline}: {waiting}"
            ok, wake = "False", self.reporter.now + self.settings.recheck_after
        else:
            waiting = ", ".join(f"{st.kind} {st.name}" for st in states if not st.ready)
            reason, message = "RollingOut", f"waiting for {waiting}"
            # Events end the wait; without any, the poll, or the deadline to report a stall.
            poll = self.reporter.now + self.settings.rollout_poll
            ok, wake = "False", min(poll, last + self.settings.rollout_deadline)
        conditions = status.get("conditions") or []
        return RolloutReport(
            targets=[st.as_status() for st in states],
            condition=("RolloutComplete", ok, reason, message),
            old=next((c for c in conditions if c.get("type") == "RolloutComplete"), {}),
            since=last,
            wake=min((w for w in (wake, window_wake) if w is not None), default=None),
        )

    async def read(self, spec: ClientSecretSpec) -> Targets:
        """The workloads ``spec.restartTargets`` name or select, and what is wrong with them."""
        workloads: list[dict[str, Any]] = []
        problems: list[tuple[str, str]] = []
        for target in spec.restart_targets:
            kind = target["kind"]
            try:
                if target.get("name"):
                    found = await self.store.get_workload(kind, spec.namespace, target["name"])
                    if found is None:
                        problems.append(
                            (
                                "TargetNotFound",
                                f"{kind} {target['name']} not found in {spec.namespace}",
                            )
                        )
                    else:
                        workloads.append(found)
                    continue
                selector = selector_string(target.get("selector") or {})
                if not selector:
                    # An empty selector would select every workload of the kind.
                    problems.append(("InvalidSelector", f"the {kind} selector is empty"))
                    continue
                matched = await self.store.list_workloads(kind, spec.namespace, selector)
            except KubeError as exc:
                problems.append(("RestartFailed", f"cannot read {kind} targets: HTTP {exc.status}"))
                continue
            if not matched:
                problems.append(("NoTargetsMatched", f"no {kind} matches selector {selector!r}"))
            workloads += matched
        return workloads, problems

    async def _coalesce(self, spec: ClientSecretSpec, workload: dict[str, Any], value: str) -> str:
        """Add the pending revisions of other resources restarting the same workload."""
        meta = workload.get("metadata") or {}
        labels = meta.get("labels") or {}
        pending = set(revisions(value))
        for other in await self.store.list_client_secrets(spec.namespace):
            if other["metadata"]["name"] == spec.name:
                continue
            other_status = other.get("status") or {}
            rev = str(other_status.get("secretRevision") or "")
            if (
                not rev
                or rev.startswith("fetch-")
                or rev in pending
                or other_status.get("rotation")
            ):
                continue
            for target in (other.get("spec") or {}).get("restartTargets") or []:
                if target.get("kind") != workload["kind"]:
                    continue
                named = target.get("name") == meta.get("name")
                selected = target.get("selector") is not None and selector_matches(
                    target["selector"], labels
                )
                if named or selected:
                    old = next(
                        (
                            t.get("restartedRevision")
                            for t in other_status.get("targets") or []
                            if (t.get("kind"), t.get("name"))
                            == (workload["kind"], meta.get("name"))
                        ),
                        None,
                    )
                    pending = set(revisions(merged_revisions(",".join(pending), rev, old)))
                    break
        return ",".join(sorted(pending))
