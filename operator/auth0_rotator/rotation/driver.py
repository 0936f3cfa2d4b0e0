"""The journal driver: runs a rotation of any strategy from its claim to its close, crash-safely.

A rotation is a :class:`~auth0_rotator.journal.RotationJournal` in
``status.rotation``. Every phase is persisted with a resourceVersion-checked
status write before the step that depends on it, so a process killed at any
point resumes where it stopped and a process that lost the journal to another
stops at its next write. The driver owns what every strategy shares:

- the **claim**: a new journal written with a resourceVersion check that also
  consumes the trigger (only the process whose claim succeeds goes on), after
  staging the strategy's fresh values create-only when it has any;
- the **fence**: every later journal write succeeds only while the journal is
  still the one this process wrote (:meth:`Reporter.fence`);
- **resuming** an open journal, and **taking over** one whose holder has not
  renewed it for ``stale_journal_after``;
- the strategy's own phases (:attr:`Strategy.steps`), then the common ones
  (``Applied``, ``Verified``, ``Delivering``: :mod:`.tail`, which also lends
  the strategies their services), and the strategy's phases after those;
- **crash points** (:mod:`.crash`): the test hook that SIGKILLs the process
  at a named point between two steps, fired here and in :mod:`.tail`;
- **retry timing**: a journal Auth0 refused waits for ``retryAt``, and the
  same failure is not retried before its wake time by our own status writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from auth0_rotator import logs
from auth0_rotator.auth0 import Auth0Client, Auth0Error
from auth0_rotator.decisions import Decision
from auth0_rotator.fetching import TargetSecrets
from auth0_rotator.journal import Phase, RotationJournal
from auth0_rotator.kube import Conflict, KubeStore, OwnerInfo
from auth0_rotator.metrics import Metrics
from auth0_rotator.model import ClientSecretSpec, TenantRef, TenantSpec
from auth0_rotator.reporting import Reporter, Stop
from auth0_rotator.restarting import Restarter, Targets
from auth0_rotator.rotation.crash import PERSISTED_POINTS, reached
from auth0_rotator.rotation.staging import StagingStore, StagingTaken
from auth0_rotator.rotation.strategy import Rotation, Strategy
from auth0_rotator.rotation.tail import CommonTail
from auth0_rotator.settings import EngineSettings

__all__ = ["Connect", "JournalDriver"]

log = logging.getLogger(__name__)

_BASE = {"Announce": "Generate"}
"""Strategy modules that are a mode of a ``spec.strategy`` (``announce: true``)."""

Connect = Callable[[ClientSecretSpec], Awaitable[tuple[TenantSpec, Auth0Client]]]
"""Opens the tenant of a (journal-bound) spec for the rest of the reconcile."""


def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` if it still runs; else take its outcome (no "never retrieved" log)."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


class JournalDriver(CommonTail):
    """Claims, resumes and drives rotation journals (and lends strategies its services)."""

    def __init__(
        self,
        store: KubeStore,
        reporter: Reporter,
        targets: TargetSecrets,
        restarter: Restarter,
        strategies: dict[str, Strategy],
        settings: EngineSettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.reporter = reporter
        self.targets = targets
        self.restarter = restarter
        self.strategies = strategies
        self.settings = settings
        self.metrics = metrics
        self.staging = StagingStore(store)
        # Owner uid -> (not before, generation): Auth0 refused a journal's step.
        self._held: dict[str, tuple[datetime, Any]] = {}

    # -- entry points -------------------------------------------------------------------

    async def start(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        decision: Decision,
        owner: OwnerInfo,
        tenant: TenantSpec,
        auth0: Auth0Client,
        secret: dict[str, Any] | None,
    ) -> datetime | None:
        """Claim a rotation for ``decision``'s trigger and drive it; when to look again."""
        strategy = self.strategies[spec.rotation_strategy]
        journal = RotationJournal.start(
            trigger=decision.trigger,
            strategy=strategy.name,
            client_id=spec.client_id,
            tenant=f"{spec.tenant.kind}/{spec.tenant.name}",
            holder=self.settings.identity,
            now=self.now,
        )
        # The Events of a rotation wait until its critical steps are done.
        with self.store.holding_events():
            message = (
                f"rotating the {strategy.noun} of client {spec.client_id} ({decision.trigger})"
            )
            staged = await strategy.fresh_values(spec)
            if staged and strategy.staged_phase is not None:
                if await self.staging.prestage(owner, journal.id, staged):
                    reached("prestaged")
                    # Staged before the claim, so the claim itself records the phase.
                    journal = replace(journal, phase=strategy.staged_phase)
                else:
                    staged = {}
            conditions = self.reporter.conditions(obj, ("Rotating", "True", "Rotating", message))
            try:
                await self.reporter.patch(
                    obj,
                    {**decision.consume, "rotation": journal.as_status(), "conditions": conditions},
                    claim=True,
                )
            except Conflict:
                if staged:
                    # Lost the claim: remove what we staged, unless someone wrote it since.
                    await self.staging.delete(owner, only_as_written=True)
                raise
            await self.reporter.event(obj, "Normal", "RotationStarted", message)
            logs.rotation.set(journal.id)
            log.info("rotation started (%s, %s)", decision.trigger, strategy.name)
            reached("claimed")
            if journal.phase in PERSISTED_POINTS:
                reached(PERSISTED_POINTS[journal.phase])
            # A new rotation id: nothing else is staged for it (saves reading it back).
            self.staging.claimed(owner, journal.id, staged)
            rotation = Rotation(obj, spec, owner, tenant, auth0, journal, secret, fresh=True)
            return await self._run(rotation, strategy)

    async def resume(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        owner: OwnerInfo,
        secret: dict[str, Any] | None,
        connect: Connect,
    ) -> datetime | None:
        """Go on with the open journal of ``obj`` (taking it over if its holder is stale)."""
        raw = (obj.get("status") or {}).get("rotation") or {}
        journal = RotationJournal.from_status(raw, default_strategy=spec.strategy)
        if journal.holder != self.settings.identity:
            stale_at = journal.renewed_at + self.settings.stale_journal_after
            if self.now < stale_at:
                return stale_at  # another live process may be running it: never twice
            journal = journal.taken_over(self.settings.identity, self.now)
            await self.reporter.fence(obj, {"rotation": journal.as_status()})
        bound = journal.tenant_ref()
        if bound is not None and journal.client_id:
            kind, name = bound
            ref = TenantRef(kind, name, spec.namespace if kind == "Auth0Tenant" else None)
            spec = replace(spec, client_id=journal.client_id, tenant=ref)
        known = journal.strategy in self.strategies
        base = _BASE.get(journal.strategy, journal.strategy)
        if known and journal.phase == Phase.CLAIMED and base != spec.strategy:
            # Nothing changed in Auth0 yet (every strategy we know starts so): the new
            # spec's strategy takes over.
            await self._abandon(obj, owner, journal, f"spec.strategy is now {spec.strategy}")
            return self.now
        strategy = self.strategies.get(journal.strategy)
        if strategy is None:
            await self.reporter.fail(
                obj,
                "InvalidSpec",
                f"the open rotation uses strategy {journal.strategy}, which this operator "
                "does not know: run a release that does",
                retry=False,
            )
        tenant, auth0 = await connect(spec)
        rotation = Rotation(obj, spec, owner, tenant, auth0, journal, secret)
        return await self._run(rotation, strategy)

    # -- the phases ---------------------------------------------------------------------

    async def _run(self, rotation: Rotation, strategy: Strategy) -> datetime | None:
        """Drive a claimed journal to its close; ``rotation.secret`` is the target as read.

        Writes of the target are resourceVersion-checked against it: if it changed
        meanwhile, the write fails with :class:`Conflict` and the reconcile starts
        over from the journal.
        """
        obj, spec, owner = rotation.obj, rotation.spec, rotation.owner
        logs.rotation.set(rotation.journal.id or None)  # reset by the controller
        # A refusal by Auth0 holds the journal until the failure's wake time (and a
        # refused rotate-secret until its persisted retryAt), against our own status
        # writes bringing the call back; a spec edit or new tenant credentials (the
        # tenant's client is replaced when they change) end the hold at once.
        generation = (obj["metadata"].get("generation"), rotation.auth0)
        held = self._held.pop(owner.uid, None)
        changed = held is not None and held[1] != generation
        retry_at = rotation.journal.retry_at
        waiting = rotation.journal.phase == Phase.CLAIMED and retry_at and self.now < retry_at
        if waiting and retry_at and not changed:
            if held is not None:
                self._held[owner.uid] = held
            return retry_at  # the failure is in Ready already
        rotation.journal = replace(rotation.journal, retry_at=None)
        if held is not None and not changed and self.now < held[0]:
            self._held[owner.uid] = held
            return held[0]
        # Read the restart targets while Auth0 and the Secret are written.
        reading = (
            asyncio.create_task(self.restarter.read(spec))
            if spec.restart_targets and not spec.auth0_targets
            else None
        )
        try:
            rollout_wake = await self._advance(rotation, strategy, reading)
        except Auth0Error as exc:
            try:
                await self.reporter.auth0_failure(obj, exc)
            except Stop as stop:
                if stop.wake_at is not None:
                    self._held[owner.uid] = (stop.wake_at, generation)
                raise
        except StagingTaken as exc:
            await self.reporter.fail(
                obj,
                "SecretConflict",
                f"{exc} (the operator keeps a rotation's pending value under that name)",
                retry=False,
            )
        finally:
            if reading is not None:
                _discard(reading)
        await self.staging.delete(owner)
        wakes = (self.reporter.next_wake(spec, obj.get("status") or {}), rollout_wake)
        return min((w for w in wakes if w is not None), default=None)

    async def _advance(
        self, rotation: Rotation, strategy: Strategy, reading: asyncio.Task[Targets] | None
    ) -> datetime | None:
        """Step the journal through its phases until it closes; the rollout's wake time."""
        while True:
            phase = rotation.journal.phase
            step = strategy.steps.get(phase)
            if step is not None:
                outcome = await step(rotation, self)
                if outcome.close:
                    rotation.journal = outcome.journal
                    await self._close(rotation, outcome.status, note=outcome.note)
                    return None
                if outcome.persist:
                    await self.persist(rotation, outcome.journal, outcome.status)
                else:
                    rotation.journal = outcome.journal
                rotation.fresh = True
                if outcome.journal.phase == Phase.APPLIED:
                    reached("auth0-written")
                elif outcome.persist and outcome.journal.phase in PERSISTED_POINTS:
                    reached(PERSISTED_POINTS[outcome.journal.phase])
            elif phase == Phase.APPLIED:
                await self._verify(rotation, strategy)
            elif phase == Phase.VERIFIED:
                done, wake = await self._write_target(rotation, strategy, reading)
                if done:
                    return wake
            elif phase == Phase.DELIVERING:
                return await self._deliver(rotation)
            else:
                await self.reporter.fail(
                    rotation.obj,
                    "InvalidSpec",
                    f"the open rotation is in phase {phase}, which strategy {strategy.name} "
                    "does not have",
                    retry=False,
                )
