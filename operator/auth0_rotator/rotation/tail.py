"""The common tail of every rotation: verify, write the target Secret, restart, deliver, close.

A mixin of :class:`~auth0_rotator.rotation.driver.JournalDriver` for the phases
every strategy shares (after the strategy's own steps made Auth0 hold the
value), with the strategy's hooks for what differs:

``Applied``
    Auth0 holds the value, which is staged now if it was not. Verify it
    (:meth:`Strategy.verify`) unless ``spec.verify`` is false; on a timeout
    ``Applied`` is persisted so retries verify again, never set it again.
``Verified``
    The fence before the target Secret: write it
    (:meth:`Strategy.target_values`), then restart the targets and close, or
    persist ``Delivering`` (``auth0Targets``) or the strategy's
    :attr:`Strategy.after_target` phase.
``Delivering``
    Restart the targets, write each Auth0-side target, close.

Also here: closing a journal (``Ready=True``, the Event, the metric) and
abandoning one that changed nothing in Auth0.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any, NoReturn

from auth0_rotator.fetching import TargetSecrets
from auth0_rotator.journal import Phase, RotationJournal
from auth0_rotator.kube import OwnerInfo
from auth0_rotator.metrics import Metrics
from auth0_rotator.reporting import Reporter, Stop
from auth0_rotator.restarting import Restarter, RolloutReport, Targets
from auth0_rotator.rotation.crash import PERSISTED_POINTS, reached
from auth0_rotator.rotation.delivery import deliver
from auth0_rotator.rotation.staging import StagingStore
from auth0_rotator.rotation.strategy import Rotation, Strategy
from auth0_rotator.schedule import format_time
from auth0_rotator.settings import EngineSettings

__all__ = ["CommonTail"]

log = logging.getLogger(__name__)


class CommonTail:
    """The phases after a strategy's own, and the journal writes they need."""

    reporter: Reporter
    targets: TargetSecrets
    restarter: Restarter
    strategies: dict[str, Strategy]
    settings: EngineSettings
    metrics: Metrics | None
    staging: StagingStore

    # -- services lent to strategies --------------------------------------------------

    @property
    def now(self) -> datetime:
        """The engine's clock."""
        return self.settings.clock()

    async def persist(
        self,
        rotation: Rotation,
        journal: RotationJournal,
        status: dict[str, Any] | None = None,
    ) -> None:
        """Write ``journal`` (and ``status`` fields); a process that lost the journal stops."""
        journal = replace(journal, renewed_at=self.now)
        await self.reporter.fence(rotation.obj, {**(status or {}), "rotation": journal.as_status()})
        rotation.journal = journal

    async def fail(self, rotation: Rotation, reason: str, message: str, *, retry: bool) -> NoReturn:
        """Report Ready=False with ``reason`` and stop this reconcile."""
        await self.reporter.fail(rotation.obj, reason, message, retry=retry)

    async def warn(self, rotation: Rotation, reason: str, message: str) -> None:
        """Post a Warning Event about the resource."""
        await self.reporter.event(rotation.obj, "Warning", reason, message)

    # -- the common phases -----------------------------------------------------------

    async def _verify(self, rotation: Rotation, strategy: Strategy) -> None:
        """``Applied``: stage the value if needed, prove Auth0 accepts it, persist Verified."""
        owner, journal, spec = rotation.owner, rotation.journal, rotation.spec
        value = await self.staging.value(owner, journal.id)
        if value is None and rotation.value is not None:
            value = rotation.value
            await self.staging.stage(owner, journal.id, value=value)
        if value is None:
            raise Stop(self.now + self.settings.retry_after)
        reached("applied")
        if spec.verify and not await strategy.verify(rotation, value, self):
            if ((rotation.obj.get("status") or {}).get("rotation") or {}).get("phase") != "Applied":
                # Retries verify again rather than set the value again.
                await self.persist(rotation, journal.at(Phase.APPLIED, self.now))
            await self.reporter.fail(
                rotation.obj,
                "VerificationFailed",
                f"Auth0 did not accept the new {strategy.noun} of client {spec.client_id} within "
                f"{self.settings.verify_timeout:.0f}s; it is kept in the staging Secret and "
                "verification is retried",
                retry=True,
            )
        # The fence before the target Secret: a process that lost the journal stops here.
        await self.persist(rotation, rotation.journal.at(Phase.VERIFIED, self.now))
        reached("verified")

    async def _write_target(
        self, rotation: Rotation, strategy: Strategy, reading: asyncio.Task[Targets] | None
    ) -> tuple[bool, datetime | None]:
        """``Verified``: write the target Secret; restart and close, or persist the next phase."""
        obj, spec, owner, journal = rotation.obj, rotation.spec, rotation.owner, rotation.journal
        value = await self.staging.value(owner, journal.id)
        if value is None:
            raise Stop(self.now + self.settings.retry_after)
        rv = await self.targets.write_target(
            obj,
            spec,
            owner,
            rotation.tenant,
            await strategy.target_values(rotation, value, self),
            strategy.value_key(spec),
            journal.id,
            existing=rotation.secret,
        )
        reached("secret-written")
        status = obj.get("status") or {}
        written = {
            "secretName": spec.secret_name,
            "secretRevision": journal.id,
            "restartRevision": journal.id,
            "secretResourceVersion": rv,
            "lastRotationTime": format_time(self.now),
            "rotationCount": int(status.get("rotationCount") or 0) + 1,
        }
        following = Phase.DELIVERING if spec.auth0_targets else strategy.after_target
        if following is not None:
            # Auth0-side consumers still need the value, or the strategy has more to
            # do (restarting is then its next step): the journal stays open.
            journal = journal.at(following, self.now)
            await self.reporter.fence(obj, {**written, "rotation": journal.as_status()})
            rotation.journal = journal
            if following in PERSISTED_POINTS:
                reached(PERSISTED_POINTS[following])
            return False, None
        found = None if reading is None else await reading
        # Restart before closing the journal: the pods need the value now. A crash in
        # between restarts nothing twice (the workloads carry this revision already).
        report = await self.restarter.restart(obj, spec, {**status, **written}, found)
        await self._close(rotation, written, report)
        return True, None if report is None else report.wake

    async def _deliver(self, rotation: Rotation) -> datetime | None:
        """``Delivering``: restart the targets, write the Auth0-side targets, close."""
        # Restart first: the Secret already holds the value, whatever Auth0-side
        # targets still need.
        rollout_wake = await self.restarter.rollout(rotation.obj, rotation.spec)
        try:
            await deliver(rotation, self)
        except Stop as stop:
            # A failing target must not postpone a restart that is due sooner.
            due = [w for w in (stop.wake_at, rollout_wake) if w is not None]
            raise Stop(min(due, default=None)) from None
        reached("delivered")
        await self._close(rotation)
        return rollout_wake

    async def _abandon(
        self, obj: dict[str, Any], owner: OwnerInfo, journal: RotationJournal, why: str
    ) -> None:
        """Drop a journal that changed nothing in Auth0 (phase ``Claimed``)."""
        message = f"rotation {journal.id} abandoned before any change in Auth0: {why}"
        await self.reporter.fence(
            obj,
            {
                "rotation": None,
                "conditions": self.reporter.conditions(
                    obj, ("Rotating", "False", "Abandoned", message)
                ),
            },
        )
        await self.reporter.event(obj, "Normal", "RotationAbandoned", message)
        await self.staging.delete(owner)
        self.staging.forget(owner)

    async def _close(
        self,
        rotation: Rotation,
        written: dict[str, Any] | None = None,
        report: RolloutReport | None = None,
        *,
        note: str | None = None,
    ) -> None:
        """Close the journal: Ready=True, Rotated (with ``report``'s rollout status, if any)."""
        obj, journal = rotation.obj, rotation.journal
        strategy = self.strategies.get(journal.strategy)
        noun = strategy.noun if strategy is not None else "secret"
        message = f"rotated the {noun} of client {rotation.spec.client_id} ({journal.trigger})"
        if journal.delivered:
            message += f"; delivered to {', '.join(journal.delivered)}"
        if journal.recovery:
            message += f"; {journal.recovery}"
        if note:
            message += f"; {note}"
        rollout = [] if report is None else [report.condition]
        await self.reporter.patch(
            obj,
            {
                **(written or {}),
                **({} if report is None else {"targets": report.targets}),
                "rotation": None,
                "conditions": self.reporter.conditions(
                    obj,
                    ("Ready", "True", "Rotated", message),
                    ("Rotating", "False", "Idle", "no rotation in progress"),
                    *rollout,
                ),
            },
        )
        await self.reporter.event(obj, "Normal", "Rotated", message)
        if report is not None:
            await self.restarter.reported(obj, report)
        self.staging.forget(rotation.owner)
        seconds = (self.now - journal.started_at).total_seconds()
        log.info("rotation finished after %.1fs", seconds)
        if self.metrics is not None:
            self.metrics.rotation_succeeded(journal.trigger, seconds)
