"""The rotation engine: reconcile one Auth0ClientSecret, crash-safely.

``reconcile`` reads the resource, asks :func:`decide` what is due, and acts.
A rotation is a journal in ``status.rotation`` whose phases are persisted
before the step that depends on them, so a process killed at any point
resumes where it stopped (SPEC §3):

``Claimed``
    the trigger is consumed by a resourceVersion-checked status write; only
    the process whose claim succeeded goes on.
``Staged`` (Generate)
    a new value is in the staging Secret; PATCH to Auth0 is idempotent, so
    resuming here simply PATCHes the same value again. Usually the value is
    staged (create-only) just before the claim, and the claim records Staged.
``Requested`` (Rotate)
    rotate-secret is about to be sent; resuming here means its outcome is
    unknown, so the value is read back from Auth0 (``read:client_keys``) unless
    it is staged already, and only if that is impossible is the secret
    rotated once more.
``Applied``
    Auth0 holds the staged value; persisted only when verification failed, so
    a retry verifies again.
``Verified``
    Auth0 accepts it. This write is the fence before the target Secret; then
    the targets are restarted and the journal is closed.

The value itself only ever lives in Secrets (staging and target) and Auth0.
A step that is not persisted is repeated on resume; each is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import secrets
import signal
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from kubernetes.aio.client import ApiException

from auth0_rotator import logs
from auth0_rotator.access import selector_matches
from auth0_rotator.auth0 import (
    Auth0Client,
    Auth0Error,
    InsufficientScope,
    OutcomeUnknown,
)
from auth0_rotator.decisions import Decision, SecretState, decide, forced_rotation_hold
from auth0_rotator.kube import (
    UNREAD,
    Conflict,
    KubeStore,
    OwnerInfo,
    SecretConflict,
    decode_secret,
)
from auth0_rotator.metrics import Metrics
from auth0_rotator.model import ClientSecretSpec, SpecError, TenantRef, TenantSpec
from auth0_rotator.rollout import (
    REVISION_ANNOTATION,
    TargetState,
    merged_revisions,
    revisions,
    rollout_state,
    selector_string,
)
from auth0_rotator.schedule import Clock, SystemClock, format_time, parse_time
from auth0_rotator.secretvalue import SecretValue, generate_client_secret
from auth0_rotator.tenants import TenantProblem, TenantRegistry

__all__ = ["ROTATE_ANNOTATION", "EngineSettings", "RotationEngine", "staging_secret_name"]

log = logging.getLogger(__name__)

ROTATE_ANNOTATION = "auth0rotator.dev/rotate"
SECRET_KEY_ANNOTATION = "auth0rotator.dev/client-secret-key"
"""On a target Secret: which key holds the client secret (to relocate it)."""
CRASH_ENV = "AUTH0_ROTATOR_TEST_CRASH_AT"
"""Test hook: SIGKILL this process when the named point is reached (see ``_crash_point``)."""

_SESSIONS: contextvars.ContextVar[contextlib.AsyncExitStack] = contextvars.ContextVar("sessions")
"""The tenant sessions of the reconcile running in this task (closed when it ends)."""

_DECIDING_METADATA = ("generation", "annotations", "labels", "deletionTimestamp", "uid")
"""Metadata a reconcile decides on; a status write that finds any of it changed is no echo."""


def staging_secret_name(resource_name: str) -> str:
    """Name of the staging Secret that holds a rotation's pending value."""
    return f"{resource_name}.staging.auth0rotator.dev"


def auth0_target_label(target: dict[str, Any]) -> str:
    """A short name for an ``auth0Targets`` entry, for the journal and messages."""
    if "actionSecret" in target:
        t = target["actionSecret"]
        return f"action {t.get('actionId')} secret {t.get('name')}"
    if "rulesConfig" in target:
        return f"rules config {target['rulesConfig'].get('key')}"
    t = target.get("clientMetadata") or {}
    return f"client_metadata {t.get('key')} of client {t.get('clientId')}"


def _crash_point(name: str) -> None:
    # Lets the crash-safety tests kill the real process at an exact point
    # between two persisted steps; inert unless the variable is set.
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class EngineSettings:
    """Knobs of the engine; every attribute has a production default."""

    identity: str = "auth0-rotator"
    """Who holds a journal; a restarted process with the same identity resumes it at once."""
    clock: Clock = field(default_factory=SystemClock)
    verify_timeout: float = 60.0
    """Seconds to wait for Auth0 to accept a new secret before reporting VerificationFailed."""
    verify_interval: float = 1.0
    stale_journal_after: timedelta = timedelta(minutes=5)
    """A journal held by another identity is taken over after this long."""
    retry_after: timedelta = timedelta(seconds=30)
    """When to look again after a retryable failure."""
    recheck_after: timedelta = timedelta(minutes=10)
    """When to look again after a failure a user must fix (scopes can change in Auth0)."""
    rollout_poll: timedelta = timedelta(seconds=3)
    """How often a rollout in progress is looked at."""
    restart_window: timedelta = timedelta(seconds=5)
    """A restart waits this long after its rotation, so resources rotating together for
    one workload restart it once (restart-storm coalescing)."""
    rollout_deadline: timedelta = timedelta(minutes=10)
    """After this long since the rotation an unfinished rollout is reported as RolloutStalled."""
    reconcile_deadline: float = 300.0
    """Seconds one reconcile may take; it is then cancelled (like a crash) and retried."""


@dataclass
class _RolloutReport:
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


_Targets = tuple[list[dict[str, Any]], list[tuple[str, str]]]
"""Restart targets as read: the workloads found, and (condition reason, message) problems."""


class _StagingTaken(Exception):
    """Internal: a Secret someone else wrote holds the staging Secret's name."""


class _Stop(Exception):
    """Internal: stop this reconcile after reporting; look again at ``wake_at``."""

    def __init__(self, wake_at: datetime | None) -> None:
        super().__init__()
        self.wake_at = wake_at


def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` if it still runs; else take its outcome (no "never retrieved" log)."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _condition(
    conditions: list[dict[str, Any]],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """``conditions`` with ``ctype`` set; the transition time moves only on a status change."""
    old = next((c for c in conditions if c.get("type") == ctype), None)
    changed = old is None or old.get("status") != status
    new = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": (
            format_time(now) if changed or old is None else old.get("lastTransitionTime")
        ),
        "observedGeneration": generation,
    }
    return [c for c in conditions if c.get("type") != ctype] + [new]


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` after a JSON merge patch (RFC 7386): what the API server should answer."""
    result = dict(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        elif isinstance(value, dict):
            result[key] = _merged({}, value)
        else:
            result[key] = value
    return result


class RotationEngine:
    """Reconciles Auth0ClientSecrets: triggers, rotations, fetches, status and Events."""

    def __init__(
        self,
        store: KubeStore,
        tenants: TenantRegistry,
        settings: EngineSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.tenants = tenants
        self.settings = settings or EngineSettings()
        self.metrics = metrics
        # What this process last wrote to or read from each staging Secret (by owner
        # uid): rotation id and values. Saves a read per step; the journal's phase
        # writes remain the fence against another process.
        self._staging_cache: dict[str, tuple[str, dict[str, SecretValue]]] = {}
        # Owner uid -> (not before, generation): Auth0 refused a journal's step.
        self._held: dict[str, tuple[datetime, Any]] = {}
        # Resource -> the Auth0 domain it last used: the controller's partitions.
        self._partitions: dict[tuple[str, str], str] = {}

    @property
    def now(self) -> datetime:
        """The engine's clock."""
        return self.settings.clock()

    def partition(self, key: tuple[str, str]) -> str | None:
        """The Auth0 domain ``key`` used last (the controller shares workers fairly by it)."""
        return self._partitions.get(key)

    def forget(self, key: tuple[str, str]) -> None:
        """A resource was deleted."""
        self._partitions.pop(key, None)

    # -- entry point -------------------------------------------------------------------

    async def reconcile(
        self, namespace: str, name: str, seen: dict[str, Any] | None = None
    ) -> datetime | None:
        """Bring one resource up to date; return when to look again (``None``: on events only).

        ``seen`` is the resource as its latest watch event showed it (else it is
        read). Every claim is resourceVersion-checked, so a body overtaken by a
        newer change only costs a retry.
        """
        obj = await self.store.get_client_secret(namespace, name) if seen is None else seen
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return None
        # Tenant sessions (their Auth0 clients) are held until the reconcile ends.
        async with contextlib.AsyncExitStack() as sessions:
            token = _SESSIONS.set(sessions)
            try:
                return await self._reconcile(obj)
            except _Stop as stop:
                return stop.wake_at
            except Conflict:
                # Someone else wrote first (another process, or the user): read again.
                return self.now
            finally:
                _SESSIONS.reset(token)

    async def _reconcile(self, obj: dict[str, Any]) -> datetime | None:
        meta = obj["metadata"]
        status: dict[str, Any] = dict(obj.get("status") or {})
        try:
            spec = ClientSecretSpec.parse(obj)
        except SpecError as exc:
            await self._fail(obj, "InvalidSpec", f"{exc}", retry=False, event=True)
            return None
        request = (meta.get("annotations") or {}).get(ROTATE_ANNOTATION) or None
        owner = OwnerInfo(meta["namespace"], meta["name"], meta["uid"])
        if not status.get("rotation"):
            self._staging_cache.pop(owner.uid, None)
        secret = await self.store.read_secret(spec.namespace, spec.secret_name)
        state = self._secret_state(secret, owner, spec)
        decision = decide(spec, status, request, state, self.now)
        log.debug("%s/%s: %s %s", spec.namespace, spec.name, decision.action, decision.trigger)
        if decision.trigger == "annotation" and decision.action == "rotate":
            held = await self._forced_hold(obj, spec, status)
            if held is not None:
                decision = Decision("idle", wake_at=held)

        if decision.action == "idle":
            await self._idle(obj, spec, status, decision, state)
            rollout_wake = await self._rollout(obj, spec)
            return min((w for w in (decision.wake_at, rollout_wake) if w), default=None)
        if decision.action == "relocate":
            await self._relocate(obj, spec, status, owner)
            return decision.wake_at
        if state.exists and not state.owned:
            # Never overwrite a foreign Secret, and never change Auth0 for it.
            conflict = SecretConflict(
                spec.namespace, spec.secret_name, self.store.owner_of(secret or {})
            )
            await self._fail(obj, "SecretConflict", str(conflict), retry=False)
            return None
        if decision.action == "resume":
            return await self._resume(obj, spec, status, owner, secret)
        tenant, auth0 = await self._tenant(obj, spec)
        if decision.action == "fetch":
            await self._fetch(obj, spec, decision, owner, tenant, auth0)
            return self._next_wake(spec, obj.get("status") or {})
        return await self._rotate(obj, spec, decision, owner, tenant, auth0, secret)

    # -- helpers: reporting ------------------------------------------------------------

    async def _patch(
        self, obj: dict[str, Any], status: dict[str, Any], *, claim: bool = False
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        status = {**status, "observedGeneration": meta.get("generation")}
        updated = await self.store.patch_status(
            meta["namespace"],
            meta["name"],
            status,
            resource_version=meta.get("resourceVersion") if claim else None,
        )
        new_meta = updated["metadata"]
        if all(meta.get(f) == new_meta.get(f) for f in _DECIDING_METADATA) and (
            updated.get("status") or {}
        ) == _merged(obj.get("status") or {}, status):
            # Nobody changed what this reconcile decided on, nor wrote status meanwhile
            # (another process's journal, say): its watch event is an echo.
            self.store.expect_echo(
                "auth0clientsecrets",
                meta["namespace"],
                meta["name"],
                str(new_meta.get("resourceVersion")),
            )
        obj["metadata"] = new_meta
        obj["status"] = updated.get("status") or {}
        return updated

    def _conditions(
        self, obj: dict[str, Any], *updates: tuple[str, str, str, str]
    ) -> list[dict[str, Any]]:
        conditions = list((obj.get("status") or {}).get("conditions") or [])
        generation = obj["metadata"].get("generation")
        for ctype, status, reason, message in updates:
            conditions = _condition(
                conditions, ctype, status, reason, message, self.now, generation
            )
        return conditions

    async def _event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        await self.store.post_event(obj, kind, reason, message, self.now)

    async def _fail(
        self,
        obj: dict[str, Any],
        reason: str,
        message: str,
        *,
        retry: bool,
        event: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Report Ready=False with ``reason`` (once per change) and stop this reconcile."""
        conditions = (obj.get("status") or {}).get("conditions") or []
        old: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
        same = old.get("reason") == reason and old.get("message") == message
        if not same or extra:
            conditions = self._conditions(obj, ("Ready", "False", reason, message))
            await self._patch(obj, {"conditions": conditions, **(extra or {})})
            if event and not same:
                await self._event(obj, "Warning", reason, message)
        if not same:
            log.warning("Ready=False, %s: %s", reason, message)
            if self.metrics is not None:
                journal = (obj.get("status") or {}).get("rotation") or {}
                self.metrics.failed(reason, journal.get("trigger"))
        wait = self.settings.retry_after if retry else self.settings.recheck_after
        raise _Stop(self.now + wait)

    async def _auth0_failure(self, obj: dict[str, Any], exc: Auth0Error) -> None:
        await self._fail(obj, exc.reason, exc.message, retry=exc.retryable)

    async def _forced_hold(
        self, obj: dict[str, Any], spec: ClientSecretSpec, status: dict[str, Any]
    ) -> datetime | None:
        """When a forced rotation may run, if the tenant's floor holds it now (else ``None``).

        The request is not consumed: it runs once the floor has passed.
        """
        try:
            floor = (await self.tenants.resolve(spec)).min_forced_interval
        except TenantProblem:
            return None  # reported by the rotation's own tenant check
        held = forced_rotation_hold(status, floor, self.now)
        if held is None:
            return None
        message = (
            f"forced rotation held until {format_time(held)}: the {spec.tenant.kind} "
            f"{spec.tenant.name} allows one forced rotation per resource every "
            f"{floor} (spec.minForcedRotationInterval)"
        )
        conditions = status.get("conditions") or []
        old: dict[str, Any] = next((c for c in conditions if c.get("type") == "Rotating"), {})
        if (old.get("reason"), old.get("message")) != ("RotationHeld", message):
            await self._patch(
                obj,
                {
                    "conditions": self._conditions(
                        obj, ("Rotating", "False", "RotationHeld", message)
                    )
                },
            )
            await self._event(obj, "Normal", "RotationHeld", message)
        return held

    def _next_wake(self, spec: ClientSecretSpec, status: dict[str, Any]) -> datetime | None:
        return parse_time(status.get("nextRotationTime")) if spec.schedule else None

    # -- helpers: Secrets --------------------------------------------------------------

    @staticmethod
    def _secret_state(
        secret: dict[str, Any] | None, owner: OwnerInfo, spec: ClientSecretSpec
    ) -> SecretState:
        if secret is None:
            return SecretState(exists=False)
        if not KubeStore.is_owned_by(secret, owner):
            return SecretState(exists=True, owned=False)
        data = secret.get("data") or {}
        wanted = [spec.keys.client_secret, spec.keys.client_id, spec.keys.domain]
        return SecretState(
            exists=True,
            owned=True,
            resource_version=str((secret.get("metadata") or {}).get("resourceVersion", "")),
            complete=all(data.get(k) for k in wanted if k),
        )

    async def _write_target(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        owner: OwnerInfo,
        tenant: TenantSpec | None,
        value: SecretValue,
        previous: SecretValue | None,
        revision: str,
        existing: dict[str, Any] | None = UNREAD,
    ) -> str:
        values: dict[str, SecretValue | str] = {spec.keys.client_secret: value}
        if spec.keys.client_id:
            values[spec.keys.client_id] = spec.client_id
        if spec.keys.domain and tenant is not None:
            values[spec.keys.domain] = tenant.domain
        if spec.keys.previous_client_secret and previous is not None:
            values[spec.keys.previous_client_secret] = previous
        try:
            return await self.store.write_owned_secret(
                owner,
                spec.secret_name,
                values,
                labels=spec.labels,
                annotations={
                    **spec.annotations,
                    "auth0rotator.dev/secret-revision": revision,
                    SECRET_KEY_ANNOTATION: spec.keys.client_secret,
                },
                owner_reference=(
                    owner.owner_reference(controller=True)
                    if spec.deletion_policy == "Delete"
                    else None
                ),
                existing=existing,
            )
        except SecretConflict as exc:
            await self._fail(obj, "SecretConflict", str(exc), retry=False)
            raise AssertionError("unreachable") from None

    async def _tenant(
        self, obj: dict[str, Any], spec: ClientSecretSpec, *, journal_open: bool = False
    ) -> tuple[TenantSpec, Auth0Client]:
        """The tenant and its client, held until this reconcile ends (see :meth:`reconcile`)."""
        try:
            access = await _SESSIONS.get().enter_async_context(
                self.tenants.session(spec, obj, journal_open=journal_open)
            )
        except TenantProblem as exc:
            await self._fail(obj, exc.reason, exc.message, retry=False)
            raise AssertionError("unreachable") from None
        self._partitions[(spec.namespace, spec.name)] = access.tenant.domain.lower()
        return access.tenant, access.auth0

    # -- actions -------------------------------------------------------------------------

    async def _idle(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        status: dict[str, Any],
        decision: Decision,
        state: SecretState,
    ) -> None:
        patch = dict(decision.consume)
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        if decision.reason == "Suspended":
            want = ("True" if state.exists else "False", "Suspended", decision.message)
        elif ready is not None and ready.get("reason") in ("Suspended",) and state.exists:
            want = ("True", "Rotated", "the Secret holds the current client secret")
        else:
            want = None
        if want and (ready is None or (ready["status"], ready["reason"]) != want[:2]):
            patch["conditions"] = self._conditions(obj, ("Ready", *want))
        generation_moved = status.get("observedGeneration") != obj["metadata"].get("generation")
        if patch or generation_moved:
            await self._patch(obj, patch)

    async def _rollout(self, obj: dict[str, Any], spec: ClientSecretSpec) -> datetime | None:
        """Restart targets for the current rotation and report their rollout (SPEC §3)."""
        report = await self._restart_targets(obj, spec, obj.get("status") or {})
        if report is None:
            return None
        if report.changed(obj.get("status") or {}):
            await self._patch(
                obj,
                {"targets": report.targets, "conditions": self._conditions(obj, report.condition)},
            )
            await self._rollout_reported(obj, report)
        return report.wake

    async def _rollout_reported(self, obj: dict[str, Any], report: _RolloutReport) -> None:
        """After ``report`` is in the status: its metric and, on a new reason, its Event."""
        _, ok, reason, message = report.condition
        if ok == "True" and report.old.get("status") != "True" and self.metrics is not None:
            self.metrics.rollout_completed((self.now - report.since).total_seconds())
        if report.old.get("reason") != reason and reason != "RollingOut":
            kind = "Normal" if ok == "True" else "Warning"
            await self._event(obj, kind, reason if ok == "False" else "RolloutComplete", message)

    async def _restart_targets(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        status: dict[str, Any],
        found: _Targets | None = None,
    ) -> _RolloutReport | None:
        """Restart what still needs it for ``status``; what the status should say about it.

        ``status.restartRevision`` names the value workloads must run: set by a
        completed rotation and by adopting another client, never by a drift
        restore (same value), so a pending restart cannot be skipped. ``status``
        may be ahead of ``obj``'s: a rotation restarts before it closes its journal.
        ``found`` is what :meth:`_read_targets` returned, if the caller read ahead.
        """
        revision = str(status.get("restartRevision") or "")
        if not spec.restart_targets or not revision:
            return None
        workloads, problems = found if found is not None else await self._read_targets(spec)
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
            if rotated is not None and self.now < rotated + self.settings.restart_window:
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
                    return await self._restart_targets(obj, spec, status)
                states.append(state)
                window_wake = self.now + self.settings.rollout_poll
                continue
            except ApiException as exc:
                problems.append(
                    (
                        "RestartFailed",
                        f"cannot restart {state.kind} {state.name}: HTTP {exc.status}",
                    )
                )
                states.append(state)
                continue
            note = f"restarted {state.kind} {state.name} for secret revision {revision}"
            await self._event(obj, "Normal", "Restarted", note)
            await self.store.post_event(
                workload, "Normal", "SecretRotated", f"{note} ({spec.name})", self.now
            )
            states.append(replace(state, restarted_revision=revision, ready=False))
        last = rotated or self.now
        if problems:
            reason, message = problems[0][0], "; ".join(p[1] for p in problems)
            ok, wake = "False", self.now + self.settings.retry_after
        elif all(st.ready for st in states):
            reason, message = "Complete", f"every target runs secret revision {revision}"
            ok, wake = "True", None
        elif any(st.paused for st in states):
            paused = ", ".join(st.name for st in states if st.paused)
            reason, message = "RolloutPaused", f"paused: {paused}; resume to finish the rollout"
            ok, wake = "False", self.now + self.settings.recheck_after
        elif self.now > last + self.settings.rollout_deadline:
            waiting = ", ".join(f"{st.kind} {st.name}" for st in states if not st.ready)
            reason = "RolloutStalled"
            message = f"not rolled out after {self.settings.rollout_deadline}: {waiting}"
            ok, wake = "False", self.now + self.settings.recheck_after
        else:
            waiting = ", ".join(f"{st.kind} {st.name}" for st in states if not st.ready)
            reason, message = "RollingOut", f"waiting for {waiting}"
            ok, wake = "False", self.now + self.settings.rollout_poll
        conditions = status.get("conditions") or []
        return _RolloutReport(
            targets=[st.as_status() for st in states],
            condition=("RolloutComplete", ok, reason, message),
            old=next((c for c in conditions if c.get("type") == "RolloutComplete"), {}),
            since=last,
            wake=min((w for w in (wake, window_wake) if w is not None), default=None),
        )

    async def _read_targets(self, spec: ClientSecretSpec) -> _Targets:
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
            except ApiException as exc:
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

    async def _fetch(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        decision: Decision,
        owner: OwnerInfo,
        tenant: TenantSpec,
        auth0: Auth0Client,
    ) -> None:
        try:
            value = await auth0.get_client_secret(spec.client_id)
        except Auth0Error as exc:
            if decision.trigger == "drift" and isinstance(exc, InsufficientScope):
                await self._fail(
                    obj,
                    "DriftNotRestored",
                    f"the Secret {spec.secret_name} was deleted or edited and cannot be restored "
                    "without the read:client_keys scope; grant it, or force a rotation",
                    retry=False,
                )
            await self._auth0_failure(obj, exc)
            raise AssertionError("unreachable") from None
        revision = f"fetch-{secrets.token_hex(6)}"
        current = await self.store.read_secret(spec.namespace, spec.secret_name)
        unchanged = (
            current is not None
            and KubeStore.is_owned_by(current, owner)
            and self._secret_state(current, owner, spec).complete
            and decode_secret(current, spec.keys.client_secret) == value
        )
        if unchanged and current is not None:
            # Already right (e.g. only labels were edited, or another process just
            # wrote it): adopt it as is; rewriting would look like drift to others.
            rv = str((current.get("metadata") or {}).get("resourceVersion", ""))
            revision = str(
                ((current.get("metadata") or {}).get("annotations") or {}).get(
                    "auth0rotator.dev/secret-revision"
                )
                or revision
            )
        else:
            rv = await self._write_target(obj, spec, owner, tenant, value, None, revision)
        restored = decision.trigger == "drift"
        reason = "Restored" if restored else "Fetched"
        message = (
            f"Secret {spec.secret_name} restored from Auth0"
            if restored
            else f"Secret {spec.secret_name} holds the current secret of client {spec.client_id}"
        )
        adopted = decision.trigger == "initialization" and bool(
            (obj.get("status") or {}).get("clientRef")
        )
        await self._patch(
            obj,
            {
                **decision.consume,
                **({"restartRevision": revision} if adopted else {}),
                "secretName": spec.secret_name,
                "secretRevision": revision,
                "secretResourceVersion": rv,
                "conditions": self._conditions(obj, ("Ready", "True", reason, message)),
            },
        )
        await self._event(obj, "Normal", reason, message)

    async def _relocate(
        self, obj: dict[str, Any], spec: ClientSecretSpec, status: dict[str, Any], owner: OwnerInfo
    ) -> None:
        """Write the current value where the spec now says, until the held rotation runs."""
        old_name = status.get("secretName") or spec.secret_name
        old = await self.store.read_secret(spec.namespace, old_name)
        value = None
        if old is not None and KubeStore.is_owned_by(old, owner):
            annotations = (old.get("metadata") or {}).get("annotations") or {}
            value = decode_secret(old, annotations.get(SECRET_KEY_ANNOTATION) or "")
        if value is None:
            raise _Stop(self.now + self.settings.retry_after)
        tenant = await self.tenants.resolve(spec)
        rv = await self._write_target(
            obj, spec, owner, tenant, value, None, status.get("secretRevision") or "relocated"
        )
        await self._patch(obj, {"secretName": spec.secret_name, "secretResourceVersion": rv})

    async def _rotate(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        decision: Decision,
        owner: OwnerInfo,
        tenant: TenantSpec,
        auth0: Auth0Client,
        secret: dict[str, Any] | None,
    ) -> datetime | None:
        journal = self._new_journal(spec, decision)
        # The Events of a rotation wait until its critical steps are done.
        with self.store.holding_events():
            message = f"rotating the secret of client {spec.client_id} ({decision.trigger})"
            staged: dict[str, SecretValue] = {}
            if spec.strategy == "Generate":
                staged = await self._prestage(owner, journal["id"])
                if staged:
                    # Staged before the claim, so the claim itself records phase Staged.
                    journal["phase"] = "Staged"
            # The claim: a resourceVersion-checked write that also consumes the trigger.
            try:
                await self._patch(
                    obj,
                    {
                        **decision.consume,
                        "rotation": journal,
                        "conditions": self._conditions(
                            obj, ("Rotating", "True", "Rotating", message)
                        ),
                    },
                    claim=True,
                )
            except Conflict:
                if staged:
                    # Lost the claim: remove what we staged, unless someone wrote it since.
                    await self.store.delete_owned_secret(
                        owner, staging_secret_name(owner.name), only_as_written=True
                    )
                raise
            await self._event(obj, "Normal", "RotationStarted", message)
            logs.rotation.set(journal["id"])
            log.info("rotation started (%s, %s)", decision.trigger, spec.strategy)
            _crash_point("claimed")
            if staged:
                _crash_point("staged")
            # A new rotation id: nothing else is staged for it (saves reading the staging Secret).
            self._staging_cache[owner.uid] = (journal["id"], staged)
            return await self._run(obj, spec, journal, owner, tenant, auth0, secret)

    def _new_journal(self, spec: ClientSecretSpec, decision: Decision) -> dict[str, Any]:
        stamp = format_time(self.now)
        journal = {
            "id": f"{self.now.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(4)}",
            "phase": "Claimed",
            "trigger": decision.trigger,
            "strategy": spec.strategy,
            # The journal is bound to the client it started with, whatever the spec says later.
            "clientId": spec.client_id,
            "tenant": f"{spec.tenant.kind}/{spec.tenant.name}",
            "startedAt": stamp,
            "renewedAt": stamp,
            "holder": self.settings.identity,
        }
        return journal

    async def _prestage(self, owner: OwnerInfo, rotation_id: str) -> dict[str, SecretValue]:
        """Stage a new value for a rotation not claimed yet; ``{}`` if a staging Secret exists.

        Only ever creates: a staging Secret already there (a leftover, or another
        process's rotation) is never overwritten here; the rotation then stages
        after its claim, as a resumed one does.
        """
        value = generate_client_secret()
        try:
            await self._write_staging(owner, rotation_id, {"value": value}, create_only=True)
        except Conflict:
            return {}
        _crash_point("prestaged")
        return {"value": value}

    @staticmethod
    def _journal_spec(spec: ClientSecretSpec, journal: dict[str, Any]) -> ClientSecretSpec:
        """``spec`` with the client and tenant the journal was started for."""
        kind, _, name = str(journal.get("tenant") or "").partition("/")
        if not journal.get("clientId") or not name:
            return spec
        ref = TenantRef(kind, name, spec.namespace if kind == "Auth0Tenant" else None)
        return replace(spec, client_id=journal["clientId"], tenant=ref)

    async def _resume(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        status: dict[str, Any],
        owner: OwnerInfo,
        secret: dict[str, Any] | None,
    ) -> datetime | None:
        journal = dict(status["rotation"])
        if journal.get("holder") != self.settings.identity:
            renewed = parse_time(journal.get("renewedAt") or journal.get("startedAt")) or self.now
            if self.now < renewed + self.settings.stale_journal_after:
                # Another live process may be running it: never run it twice.
                return renewed + self.settings.stale_journal_after
            journal["holder"] = self.settings.identity
            journal["renewedAt"] = format_time(self.now)
            await self._patch(obj, {"rotation": journal}, claim=True)
        spec = self._journal_spec(spec, journal)
        tenant, auth0 = await self._tenant(obj, spec, journal_open=True)
        return await self._run(obj, spec, journal, owner, tenant, auth0, secret)

    async def _set_phase(self, obj: dict[str, Any], journal: dict[str, Any], phase: str) -> None:
        """Persist the journal; resourceVersion-checked, so a process that lost it stops here."""
        journal["phase"] = phase
        journal["renewedAt"] = format_time(self.now)
        await self._patch(obj, {"rotation": dict(journal)}, claim=True)

    async def _stage(
        self, owner: OwnerInfo, journal: dict[str, Any], **values: SecretValue
    ) -> None:
        """Write ``value`` and/or ``previous`` into the staging Secret, keeping the other."""
        current = await self._staging(owner, journal)
        merged = {**current, **values}
        try:
            await self._write_staging(
                owner,
                journal["id"],
                merged,
                # Nothing staged for this rotation yet: most likely no staging Secret at
                # all, so create it (a leftover is read and updated instead).
                **({} if current else {"existing": None}),
            )
        except SecretConflict as exc:
            raise _StagingTaken(str(exc)) from None
        self._staging_cache[owner.uid] = (journal["id"], merged)

    async def _write_staging(
        self,
        owner: OwnerInfo,
        rotation_id: str,
        values: dict[str, SecretValue],
        **how: Any,
    ) -> None:
        """Write the staging Secret of ``owner`` for ``rotation_id`` (``how``: write options)."""
        await self.store.write_owned_secret(
            owner,
            staging_secret_name(owner.name),
            dict(values),
            labels={},
            annotations={"auth0rotator.dev/rotation-id": rotation_id},
            owner_reference=owner.owner_reference(controller=True),
            role="staging",
            **how,
        )

    async def _staging(self, owner: OwnerInfo, journal: dict[str, Any]) -> dict[str, SecretValue]:
        """The staging Secret's values for this rotation (empty if it belongs to another)."""
        cached = self._staging_cache.get(owner.uid)
        if cached is not None and cached[0] == journal["id"]:
            return dict(cached[1])
        secret = await self.store.read_secret(owner.namespace, staging_secret_name(owner.name))
        if secret is None or not KubeStore.is_owned_by(secret, owner, role="staging"):
            # Nothing read from a Secret someone else wrote at that name is ever used.
            return {}
        rid = ((secret.get("metadata") or {}).get("annotations") or {}).get(
            "auth0rotator.dev/rotation-id"
        )
        if rid != journal["id"]:
            return {}
        found = {k: decode_secret(secret, k) for k in ("value", "previous")}
        values = {k: v for k, v in found.items() if v is not None}
        self._staging_cache[owner.uid] = (journal["id"], values)
        return dict(values)

    async def _staged(self, owner: OwnerInfo, journal: dict[str, Any]) -> SecretValue | None:
        return (await self._staging(owner, journal)).get("value")

    async def _current_value(
        self,
        spec: ClientSecretSpec,
        owner: OwnerInfo,
        auth0: Auth0Client,
        secret: dict[str, Any] | None,
    ) -> SecretValue | None:
        """The secret before rotating: from the target Secret, else from Auth0 if readable."""
        if secret is not None and KubeStore.is_owned_by(secret, owner):
            value = decode_secret(secret, spec.keys.client_secret)
            if value is not None:
                return value
        try:
            return await auth0.get_client_secret(spec.client_id)
        except Auth0Error:
            return None

    async def _run(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        journal: dict[str, Any],
        owner: OwnerInfo,
        tenant: TenantSpec,
        auth0: Auth0Client,
        secret: dict[str, Any] | None,
    ) -> datetime | None:
        """Drive a claimed journal to the end; ``secret`` is the target as this reconcile read it.

        Writes of the target are resourceVersion-checked against ``secret``: if it
        changed meanwhile, the write fails with :class:`Conflict` and the
        reconcile starts over from the journal.
        """
        logs.rotation.set(str(journal.get("id") or "") or None)  # reset by the controller
        strategy = journal.get("strategy") or spec.strategy
        restarted = False
        rollout_wake: datetime | None = None
        retry_at = parse_time(journal.get("retryAt"))
        if journal["phase"] == "Claimed" and retry_at is not None and self.now < retry_at:
            return retry_at  # a refused rotate-secret waits; the failure is in Ready already
        journal.pop("retryAt", None)
        generation = obj["metadata"].get("generation")
        held = self._held.get(owner.uid)
        if held is not None and held[1] == generation and self.now < held[0]:
            # Auth0 refused this journal's last step: our own status writes must not
            # bring the call back before the failure's wake time (a spec edit does).
            return held[0]
        self._held.pop(owner.uid, None)
        # Read the restart targets while Auth0 and the Secret are written (they are
        # patched after the Secret).
        reading = (
            asyncio.create_task(self._read_targets(spec))
            if spec.restart_targets and not spec.auth0_targets
            else None
        )
        try:
            if journal["phase"] == "Claimed":
                if strategy == "Generate":
                    await self._stage(owner, journal, value=generate_client_secret())
                    await self._set_phase(obj, journal, "Staged")
                    _crash_point("staged")
                else:
                    # Remember the value before rotating, so an unknown outcome can be
                    # told apart from a rotation that did not happen.
                    previous = await self._current_value(spec, owner, auth0, secret)
                    await self._stage(
                        owner, journal, **({"previous": previous} if previous else {})
                    )
                    await self._set_phase(obj, journal, "Requested")
                    try:
                        value = await auth0.rotate_client_secret(spec.client_id)
                    except OutcomeUnknown:
                        value = await self._recover(obj, spec, journal, owner, auth0)
                    except Auth0Error as exc:
                        # Definitely not applied (4xx, 429, never sent): back to Claimed,
                        # so the trigger is retried rather than lost, but not before
                        # retryAt: the phase writes themselves wake this resource up again.
                        wait = (
                            self.settings.retry_after
                            if exc.retryable
                            else (self.settings.recheck_after)
                        )
                        journal["retryAt"] = format_time(self.now + wait)
                        await self._set_phase(obj, journal, "Claimed")
                        raise
                    _crash_point("auth0-written")
                    await self._stage(owner, journal, value=value)
                    # Not persisted: Requested with a staged value resumes as Applied.
                    journal["phase"] = "Applied"
            if journal["phase"] == "Staged":
                value_or_none = await self._staged(owner, journal)
                if value_or_none is None:
                    # Staging lost before Auth0 was touched: stage a fresh value.
                    value_or_none = generate_client_secret()
                    await self._stage(owner, journal, value=value_or_none)
                await auth0.set_client_secret(spec.client_id, value_or_none)
                _crash_point("auth0-written")
                # Not persisted: resuming at Staged sets the same value again (idempotent).
                journal["phase"] = "Applied"
            if journal["phase"] == "Requested":
                value_or_none = await self._staged(owner, journal)
                if value_or_none is None:
                    value_or_none = await self._recover(obj, spec, journal, owner, auth0)
                    await self._stage(owner, journal, value=value_or_none)
                journal["phase"] = "Applied"
            if journal["phase"] == "Applied":
                _crash_point("applied")
                await self._verify(obj, spec, journal, owner, auth0)
                # The fence before the target Secret: a process that lost the journal
                # stops here.
                await self._set_phase(obj, journal, "Verified")
                _crash_point("verified")
            if journal["phase"] == "Verified":
                restarted = True
                rollout_wake = await self._complete(
                    obj, spec, journal, owner, tenant, secret, reading
                )
            if journal["phase"] == "Delivering":
                # Restart first: the Secret already holds the value, whatever Auth0-side
                # targets still need.
                rollout_wake, restarted = await self._rollout(obj, spec), True
                try:
                    await self._deliver(obj, spec, journal, owner, auth0)
                except _Stop as stop:
                    # A failing target must not postpone a restart that is due sooner.
                    due = [w for w in (stop.wake_at, rollout_wake) if w is not None]
                    raise _Stop(min(due, default=None)) from None
                _crash_point("delivered")
                await self._finish(obj, spec, journal, owner)
        except Auth0Error as exc:
            try:
                await self._auth0_failure(obj, exc)
            except _Stop as stop:
                if stop.wake_at is not None:
                    self._held[owner.uid] = (stop.wake_at, obj["metadata"].get("generation"))
                raise
        except _StagingTaken as exc:
            await self._fail(
                obj,
                "SecretConflict",
                f"{exc} (the operator keeps a rotation's pending value under that name)",
                retry=False,
            )
        finally:
            if reading is not None:
                _discard(reading)
        # Restart in the same reconcile: the new value is useless until pods read it.
        try:
            if not restarted:
                rollout_wake = await self._rollout(obj, spec)
        finally:
            await self.store.delete_owned_secret(owner, staging_secret_name(owner.name))
        wakes = (self._next_wake(spec, obj.get("status") or {}), rollout_wake)
        return min((w for w in wakes if w is not None), default=None)

    async def _recover(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        journal: dict[str, Any],
        owner: OwnerInfo,
        auth0: Auth0Client,
    ) -> SecretValue:
        """Resolve an unknown rotate-secret outcome by reading the secret back.

        If the value read back is the one from before the request, the rotation
        did not happen and is retried. Only if the secret cannot be read
        (``read:client_keys`` missing) is it rotated once more, once per journal.
        """
        try:
            current = await auth0.get_client_secret(spec.client_id)
        except InsufficientScope:
            if journal.get("rerotated"):
                await self._fail(
                    obj,
                    "OutcomeUnknown",
                    f"the outcome of rotate-secret for client {spec.client_id} is unknown and "
                    "the secret cannot be read back: grant read:client_keys to the management "
                    "application so the operator can recover it",
                    retry=False,
                )
            journal["rerotated"] = True
            journal["recovery"] = (
                "outcome unknown and read:client_keys is missing: rotated once more to learn "
                "the value; grant read:client_keys to avoid this"
            )
            await self._set_phase(obj, journal, "Requested")
            await self._event(obj, "Warning", "OutcomeUnknown", journal["recovery"])
            return await auth0.rotate_client_secret(spec.client_id)
        previous = (await self._staging(owner, journal)).get("previous")
        if previous is not None and current == previous:
            # Provably not rotated: rotating now is the first rotation, not a second.
            journal["recovery"] = "rotate-secret had no effect; rotated again"
            await self._set_phase(obj, journal, "Claimed")
            raise _Stop(self.now)
        journal["recovery"] = "outcome of rotate-secret was unknown; value read back from Auth0"
        return current

    async def _verify(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        journal: dict[str, Any],
        owner: OwnerInfo,
        auth0: Auth0Client,
    ) -> None:
        if not spec.verify:
            return
        value = await self._staged(owner, journal)
        if value is None:
            raise _Stop(self.now + self.settings.retry_after)
        accepted = await auth0.verify_client_secret(
            spec.client_id,
            value,
            within=self.settings.verify_timeout,
            interval=self.settings.verify_interval,
        )
        if not accepted:
            if ((obj.get("status") or {}).get("rotation") or {}).get("phase") != "Applied":
                # Retries verify again rather than set the value again.
                await self._set_phase(obj, journal, "Applied")
            await self._fail(
                obj,
                "VerificationFailed",
                f"Auth0 did not accept the new secret of client {spec.client_id} within "
                f"{self.settings.verify_timeout:.0f}s; it is kept in the staging Secret and "
                "verification is retried",
                retry=True,
            )

    async def _complete(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        journal: dict[str, Any],
        owner: OwnerInfo,
        tenant: TenantSpec,
        current: dict[str, Any] | None,
        reading: asyncio.Task[_Targets] | None = None,
    ) -> datetime | None:
        """Write the target Secret, restart targets, close the journal; when to look again.

        ``reading`` reads the restart targets ahead (:meth:`_read_targets`).
        """
        value = await self._staged(owner, journal)
        if value is None:
            raise _Stop(self.now + self.settings.retry_after)
        previous = None
        owned = current is not None and KubeStore.is_owned_by(current, owner)
        if spec.keys.previous_client_secret and owned and current is not None:
            previous = decode_secret(current, spec.keys.client_secret)
            if previous == value:
                # Resumed after the write: keep the previous value already there.
                previous = decode_secret(current, spec.keys.previous_client_secret)
        try:
            rv = await self._write_target(
                obj, spec, owner, tenant, value, previous, journal["id"], existing=current
            )
            _crash_point("secret-written")
            status = obj.get("status") or {}
            written = {
                "secretName": spec.secret_name,
                "secretRevision": journal["id"],
                "restartRevision": journal["id"],
                "secretResourceVersion": rv,
                "lastRotationTime": format_time(self.now),
                "rotationCount": int(status.get("rotationCount") or 0) + 1,
            }
            if spec.auth0_targets:
                # Auth0-side consumers still need the value: the journal stays open.
                journal["phase"] = "Delivering"
                journal["renewedAt"] = format_time(self.now)
                await self._patch(obj, {**written, "rotation": dict(journal)}, claim=True)
                return None
            found = None if reading is None else await reading
        finally:
            if reading is not None:
                _discard(reading)
        # Restart before closing the journal: the pods need the value now. A crash in
        # between restarts nothing twice (the workloads carry this revision already).
        report = await self._restart_targets(obj, spec, {**status, **written}, found)
        await self._finish(obj, spec, journal, owner, written, report)
        return None if report is None else report.wake

    async def _finish(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        journal: dict[str, Any],
        owner: OwnerInfo,
        written: dict[str, Any] | None = None,
        report: _RolloutReport | None = None,
    ) -> None:
        """Close the journal: Ready=True, Rotated (with ``report``'s rollout status, if any)."""
        message = f"rotated the secret of client {spec.client_id} ({journal.get('trigger')})"
        if journal.get("delivered"):
            message += f"; delivered to {', '.join(journal['delivered'])}"
        if journal.get("recovery"):
            message += f"; {journal['recovery']}"
        rollout = [] if report is None else [report.condition]
        await self._patch(
            obj,
            {
                **(written or {}),
                **({} if report is None else {"targets": report.targets}),
                "rotation": None,
                "conditions": self._conditions(
                    obj,
                    ("Ready", "True", "Rotated", message),
                    ("Rotating", "False", "Idle", "no rotation in progress"),
                    *rollout,
                ),
            },
        )
        await self._event(obj, "Normal", "Rotated", message)
        if report is not None:
            await self._rollout_reported(obj, report)
        self._staging_cache.pop(owner.uid, None)
        started = parse_time(journal.get("startedAt"))
        seconds = (self.now - started).total_seconds() if started else None
        log.info("rotation finished after %.1fs", seconds or 0.0)
        if self.metrics is not None:
            self.metrics.rotation_succeeded(str(journal.get("trigger") or ""), seconds)

    async def _deliver(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        journal: dict[str, Any],
        owner: OwnerInfo,
        auth0: Auth0Client,
    ) -> None:
        """Write the value to each of ``spec.auth0Targets`` not done yet (SPEC §1).

        Every write is idempotent; progress is journaled after each target, so a
        crash repeats at most the target that was in flight.
        """
        value = await self._staged(owner, journal)
        if value is None:
            raise _Stop(self.now + self.settings.retry_after)
        delivered: list[str] = list(journal.get("delivered") or [])
        for index, target in enumerate(spec.auth0_targets):
            label = auth0_target_label(target)
            if label in delivered:
                continue
            try:
                if "actionSecret" in target:
                    t = target["actionSecret"]
                    await auth0.set_action_secret(t["actionId"], t["name"], value)
                elif "rulesConfig" in target:
                    await auth0.set_rules_config(target["rulesConfig"]["key"], value)
                else:
                    t = target["clientMetadata"]
                    await auth0.set_client_metadata(t["clientId"], t["key"], value)
            except Auth0Error as exc:
                await self._fail(
                    obj,
                    exc.reason,
                    f"auth0Targets[{index}] ({label}) was not updated: {exc.message}; the "
                    "Secret already holds the new value and the rotation finishes once this "
                    "target is updated",
                    retry=exc.retryable,
                )
            delivered.append(label)
            journal["delivered"] = delivered
            await self._set_phase(obj, journal, "Delivering")
