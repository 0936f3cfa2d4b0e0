"""The engine: reconcile one Auth0ClientSecret — read, parse, decide, dispatch.

``reconcile`` starts from the resource as its latest watch event showed it (or
reads it), parses the spec, reads the target Secret, asks
:func:`~auth0_rotator.decisions.decide` what is due, and hands the work to the
part that owns it:

- a rotation (new or open): :class:`~auth0_rotator.rotation.driver.JournalDriver`
  and the strategy modules;
- a fetch, a drift restore, a relocation: :class:`~auth0_rotator.fetching.TargetSecrets`;
- restarts and rollouts: :class:`~auth0_rotator.restarting.Restarter`;
- status, conditions, Events: :class:`~auth0_rotator.reporting.Reporter`.

Tenant sessions (their Auth0 clients) are held until the reconcile ends, and
the Auth0 domain each resource used last is its partition in the work queue.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from datetime import datetime
from typing import Any

from auth0_rotator.auth0 import Auth0Client
from auth0_rotator.conditions import find
from auth0_rotator.decisions import Decision, SecretState, decide, forced_rotation_hold
from auth0_rotator.fetching import TargetSecrets
from auth0_rotator.kube import Conflict, KubeStore, OwnerInfo, SecretConflict
from auth0_rotator.labels import ROTATE_ANNOTATION
from auth0_rotator.metrics import Metrics
from auth0_rotator.model import ClientSecretSpec, SpecError, TenantSpec
from auth0_rotator.reporting import Reporter, Stop
from auth0_rotator.restarting import Restarter
from auth0_rotator.rotation import STRATEGIES
from auth0_rotator.rotation.driver import JournalDriver
from auth0_rotator.schedule import format_time
from auth0_rotator.settings import EngineSettings
from auth0_rotator.tenants import TenantProblem, TenantRegistry

__all__ = ["RotationEngine"]

log = logging.getLogger(__name__)

_SESSIONS: contextvars.ContextVar[contextlib.AsyncExitStack] = contextvars.ContextVar("sessions")
"""The tenant sessions of the reconcile running in this task (closed when it ends)."""


def _without_fetching(spec: ClientSecretSpec, decision: Decision) -> Decision:
    """For ``KeyPair``, a rotation wherever another strategy would copy the current value.

    A private key cannot be read back from Auth0 (nor copied from a Secret under
    key names the spec no longer has): creation, adoption and drift register a
    new key, and a moved Secret gets one at once (``minInterval`` does not hold it).
    """
    if spec.strategy != "KeyPair" or decision.action not in ("fetch", "relocate"):
        return decision
    consume = dict(decision.consume)
    if decision.action == "relocate":
        consume["specHash"] = spec.spec_hash
    return Decision("rotate", trigger=decision.trigger or "drift", consume=consume)


class RotationEngine:
    """Reconciles Auth0ClientSecrets: triggers, rotations, fetches, restarts, status."""

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
        self.reporter = Reporter(store, self.settings, metrics)
        self.targets = TargetSecrets(store, tenants, self.reporter, self.settings)
        self.restarter = Restarter(store, self.reporter, self.settings, metrics)
        self.driver = JournalDriver(
            store, self.reporter, self.targets, self.restarter, STRATEGIES, self.settings, metrics
        )
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
        self.restarter.waiters.done(key)

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
        async with contextlib.AsyncExitStack() as sessions:
            token = _SESSIONS.set(sessions)
            try:
                return await self._reconcile(obj)
            except Stop as stop:
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
            await self.reporter.fail(obj, "InvalidSpec", f"{exc}", retry=False)
        request = (meta.get("annotations") or {}).get(ROTATE_ANNOTATION) or None
        owner = OwnerInfo(meta["namespace"], meta["name"], meta["uid"])
        if not status.get("rotation"):
            self.driver.staging.forget(owner)
        secret = await self.store.read_secret(spec.namespace, spec.secret_name)
        state = self.targets.secret_state(secret, owner, spec)
        decision = _without_fetching(spec, decide(spec, status, request, state, self.now))
        log.debug("%s/%s: %s %s", spec.namespace, spec.name, decision.action, decision.trigger)
        if decision.trigger == "annotation" and decision.action == "rotate":
            held = await self._forced_hold(obj, spec, status)
            if held is not None:
                decision = Decision("idle", wake_at=held)

        if decision.action == "idle":
            await self._idle(obj, status, decision, state)
            rollout_wake = await self.restarter.rollout(obj, spec)
            return min((w for w in (decision.wake_at, rollout_wake) if w), default=None)
        if decision.action == "relocate":
            await self.targets.relocate(obj, spec, status, owner)
            return decision.wake_at
        if state.exists and not state.owned:
            # Never overwrite a foreign Secret, and never change Auth0 for it.
            conflict = SecretConflict(
                spec.namespace, spec.secret_name, self.store.owner_of(secret or {}), owner.ref
            )
            await self.reporter.fail(obj, "SecretConflict", str(conflict), retry=False)
        if decision.action == "resume":

            async def connect(bound: ClientSecretSpec) -> tuple[TenantSpec, Auth0Client]:
                return await self._tenant(obj, bound, journal_open=True)

            return await self.driver.resume(obj, spec, owner, secret, connect)
        tenant, auth0 = await self._tenant(obj, spec)
        if decision.action == "fetch":
            await self.targets.fetch(obj, spec, decision, owner, tenant, auth0)
            return self.reporter.next_wake(spec, obj.get("status") or {})
        return await self.driver.start(obj, spec, decision, owner, tenant, auth0, secret)

    async def _tenant(
        self, obj: dict[str, Any], spec: ClientSecretSpec, *, journal_open: bool = False
    ) -> tuple[TenantSpec, Auth0Client]:
        """The tenant and its client, held until this reconcile ends (see :meth:`reconcile`)."""
        try:
            access = await _SESSIONS.get().enter_async_context(
                self.tenants.session(spec, obj, journal_open=journal_open)
            )
        except TenantProblem as exc:
            await self.reporter.fail(obj, exc.reason, exc.message, retry=False)
        self._partitions[(spec.namespace, spec.name)] = access.tenant.domain.lower()
        return access.tenant, access.auth0

    async def _idle(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        decision: Decision,
        state: SecretState,
    ) -> None:
        patch = dict(decision.consume)
        ready = find(status.get("conditions"), "Ready")
        if decision.reason == "Suspended":
            want = ("True" if state.exists else "False", "Suspended", decision.message)
        elif ready.get("reason") == "Suspended" and state.exists:
            want = ("True", "Rotated", "the Secret holds the current client secret")
        else:
            want = None
        if want and (not ready or (ready["status"], ready["reason"]) != want[:2]):
            patch["conditions"] = self.reporter.conditions(obj, ("Ready", *want))
        generation_moved = status.get("observedGeneration") != obj["metadata"].get("generation")
        if patch or generation_moved:
            await self.reporter.patch(obj, patch)

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
        old = find(status.get("conditions"), "Rotating")
        if (old.get("reason"), old.get("message")) != ("RotationHeld", message):
            held_condition = ("Rotating", "False", "RotationHeld", message)
            await self.reporter.patch(
                obj, {"conditions": self.reporter.conditions(obj, held_condition)}
            )
            await self.reporter.event(obj, "Normal", "RotationHeld", message)
        return held
