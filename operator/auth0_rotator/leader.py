"""Lease-based leader election: one active operator at a time (SPEC §6).

kopf's peering only freezes operators of lower priority; equal priorities all
act, and a rolling upgrade briefly runs two instances. Rotating a client secret
twice, or two processes writing one Secret, is an outage, so the runtime sits
behind a ``coordination.k8s.io/v1`` Lease instead, with client-go's rules:

- a candidate takes the Lease when it is free (no holder) or when its record
  has not changed for ``lease_duration`` seconds *as measured by the
  candidate's own clock* since it first saw that record (no clock-skew trust);
- the leader renews every ``retry_period`` and gives up leadership when it has
  not renewed for ``renew_deadline`` (< ``lease_duration``): it stops acting
  before anybody else may start;
- a leader that stops normally releases the Lease (empty holder), so the
  standby of a rolling upgrade takes over within one ``retry_period``.

Every write is resourceVersion-checked, so two candidates racing for a free
Lease cannot both win. ``kubernetes.aio.leaderelection`` exists too, but it
never releases (an upgrade would wait a whole lease duration) and logs a
traceback for every contended attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.aio import client

__all__ = ["LeaderElector", "LeaseConfig"]

log = logging.getLogger(__name__)

_JITTER = 1.2


@dataclass(frozen=True)
class LeaseConfig:
    """Which Lease, who we are, and client-go's three timings (seconds)."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.name or not self.namespace or not self.identity:
            raise ValueError("leader election needs a lease name, a namespace and an identity")
        if self.retry_period <= 0:
            raise ValueError("retry period must be positive")
        if self.renew_deadline <= _JITTER * self.retry_period:
            raise ValueError(
                f"renew deadline ({self.renew_deadline:g}s) must exceed "
                f"{_JITTER:g} x retry period ({self.retry_period:g}s)"
            )
        if self.lease_duration <= self.renew_deadline:
            raise ValueError(
                f"lease duration ({self.lease_duration:g}s) must exceed "
                f"the renew deadline ({self.renew_deadline:g}s)"
            )


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquire, keep and release one Lease for one identity."""

    def __init__(
        self,
        api: client.ApiClient,
        config: LeaseConfig,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._api = api
        self._leases: Any = client.CoordinationV1Api(api)
        self._monotonic = monotonic
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self.is_leader = False
        self.holder: str | None = None
        """The holder seen at the last look (for logs, health and metrics)."""

    # -- public ------------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Return once this identity holds the Lease (waits as a standby until then)."""
        announced: str | None = None
        while not await self._try_acquire_or_renew():
            if self.holder != announced:
                announced = self.holder
                log.info(
                    "standby: lease %s/%s is held by %s",
                    self.config.namespace,
                    self.config.name,
                    self.holder,
                )
            await asyncio.sleep(self.config.retry_period * random.uniform(1.0, _JITTER))  # noqa: S311
        log.info(
            "became leader: lease %s/%s acquired by %s",
            self.config.namespace,
            self.config.name,
            self.config.identity,
        )

    async def keep(self) -> None:
        """Renew the Lease until a renewal has failed for ``renew_deadline``; then return."""
        last_renewed = self._monotonic()
        while True:
            await asyncio.sleep(self.config.retry_period)
            if await self._try_acquire_or_renew():
                last_renewed = self._monotonic()
                continue
            if self.holder not in (None, self.config.identity):
                break  # somebody else holds it: lost at once
            if self._monotonic() - last_renewed >= self.config.renew_deadline:
                break
        self.is_leader = False
        log.error(
            "lost leadership of lease %s/%s (holder now: %s)",
            self.config.namespace,
            self.config.name,
            self.holder or "nobody",
        )

    async def release(self) -> None:
        """Give the Lease up at once if we hold it, so a standby needs not wait it out."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = await self._read()
            spec = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != self.config.identity:
                return
            now = _micro_time(datetime.now(UTC))
            lease["spec"] = {
                **spec,
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "acquireTime": now,
                "renewTime": now,
            }
            await self._leases.replace_namespaced_lease(
                self.config.name, self.config.namespace, lease, _request_timeout=self._timeout
            )
            log.info("released lease %s/%s", self.config.namespace, self.config.name)
        except (client.ApiException, OSError, TimeoutError) as exc:
            # The standby then waits one lease duration: slower, still safe.
            log.warning("could not release lease %s: %s", self.config.name, type(exc).__name__)

    # -- one attempt -------------------------------------------------------------------------

    @property
    def _timeout(self) -> float:
        # A hung request must not outlast the renew deadline.
        return max(self.config.retry_period, 1.0)

    async def _read(self) -> dict[str, Any] | None:
        try:
            lease = await self._leases.read_namespaced_lease(
                self.config.name, self.config.namespace, _request_timeout=self._timeout
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        plain: dict[str, Any] = self._api.sanitize_for_serialization(lease)
        return plain

    async def _try_acquire_or_renew(self) -> bool:
        try:
            return await self._attempt()
        except (client.ApiException, OSError, TimeoutError) as exc:
            status = getattr(exc, "status", None)
            log.warning(
                "lease %s/%s: %s%s",
                self.config.namespace,
                self.config.name,
                type(exc).__name__,
                f" HTTP {status}" if status else "",
            )
            return False

    async def _attempt(self) -> bool:
        now = datetime.now(UTC)
        lease = await self._read()
        mine = {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": round(self.config.lease_duration),
            "acquireTime": _micro_time(now),
            "renewTime": _micro_time(now),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": self.config.namespace},
                "spec": {**mine, "leaseTransitions": 0},
            }
            try:
                await self._leases.create_namespaced_lease(
                    self.config.namespace, body, _request_timeout=self._timeout
                )
            except client.ApiException as exc:
                if exc.status == 409:
                    return False  # another candidate created it first
                raise
            return self._won(self.config.identity)

        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or None
        record = (
            holder,
            spec.get("leaseDurationSeconds"),
            spec.get("acquireTime"),
            spec.get("renewTime"),
            spec.get("leaseTransitions"),
        )
        if record != self._observed:
            self._observed, self._observed_at = record, self._monotonic()
        self.holder = holder
        if holder not in (None, self.config.identity):
            duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
            if self._monotonic() < self._observed_at + duration:
                self.is_leader = False
                return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.config.identity:
            mine["acquireTime"] = spec.get("acquireTime") or mine["acquireTime"]
        else:
            transitions += 1
        lease["spec"] = {**spec, **mine, "leaseTransitions": transitions}
        try:
            await self._leases.replace_namespaced_lease(
                self.config.name, self.config.namespace, lease, _request_timeout=self._timeout
            )
        except client.ApiException as exc:
            if exc.status == 409:
                return False  # changed since we read it: look again next period
            raise
        return self._won(holder)

    def _won(self, previous: str | None) -> bool:
        if previous not in (None, self.config.identity):
            log.info("took over lease %s from %s", self.config.name, previous)
        self.is_leader = True
        self.holder = self.config.identity
        self._observed = None
        return True
