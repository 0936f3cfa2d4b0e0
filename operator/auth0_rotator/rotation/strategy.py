"""What a rotation strategy is: its own phases and steps, on top of the journal driver.

A strategy knows how a new value comes to be held by Auth0 — ``Generate``
makes it and sets it, ``Rotate`` asks Auth0 to make one — and nothing else.
The :class:`~auth0_rotator.rotation.driver.JournalDriver` owns what every
strategy shares: the claim, resuming and taking over journals, the fenced
phase writes, crash points, retry timing and the common tail (verify, write
the target Secret, restart, deliver to Auth0-side targets, close).

A strategy module provides one object that satisfies :class:`Strategy` and is
registered in :data:`auth0_rotator.rotation.STRATEGIES`:

- ``fresh_values()``: what to stage before the claim (so the claim can record
  the phase that follows), or nothing;
- ``staged_phase``: the phase the claim records when that worked;
- ``steps``: for each of the strategy's phases, the step that moves a journal
  on from it. A step returns the next journal (:class:`Next`); reaching
  ``Applied`` means Auth0 holds the value, which is then in
  :attr:`Rotation.value` or staged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, Protocol

from auth0_rotator.auth0 import Auth0Client
from auth0_rotator.journal import Phase, RotationJournal
from auth0_rotator.kube import OwnerInfo
from auth0_rotator.model import ClientSecretSpec, TenantSpec
from auth0_rotator.rotation.staging import StagingStore
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator.settings import EngineSettings

__all__ = ["Next", "Rotation", "Services", "Step", "Strategy"]


@dataclass
class Rotation:
    """One claimed rotation, as the reconcile running it sees it (the steps' context)."""

    obj: dict[str, Any]
    """The resource; every status write updates it."""
    spec: ClientSecretSpec
    """The spec, bound to the client and tenant the journal was started for."""
    owner: OwnerInfo
    tenant: TenantSpec
    auth0: Auth0Client
    journal: RotationJournal
    secret: dict[str, Any] | None
    """The target Secret as this reconcile read it (writes are checked against it)."""
    fresh: bool = False
    """The current phase was entered by this reconcile (not resumed from an earlier one)."""
    value: SecretValue | None = None
    """The value Auth0 holds once known in memory, before it is staged."""


@dataclass(frozen=True)
class Next:
    """A step's outcome: the journal to go on with; ``persist`` it before the next step."""

    journal: RotationJournal
    persist: bool = True


class Services(Protocol):
    """What the driver lends a strategy's steps."""

    staging: StagingStore
    settings: EngineSettings

    @property
    def now(self) -> datetime:
        """The engine's clock."""

    async def persist(self, rotation: Rotation, journal: RotationJournal) -> None:
        """Write ``journal`` with a resourceVersion check (a process that lost it stops)."""

    async def fail(self, rotation: Rotation, reason: str, message: str, *, retry: bool) -> NoReturn:
        """Report Ready=False with ``reason`` and stop this reconcile."""

    async def warn(self, rotation: Rotation, reason: str, message: str) -> None:
        """Post a Warning Event about the resource."""


Step = Callable[[Rotation, Services], Awaitable[Next]]
"""Moves a journal on from one of its strategy's phases."""


class Strategy(Protocol):
    """One way of getting a new value held by Auth0 (``spec.strategy``)."""

    name: str
    """The ``spec.strategy`` value (and ``status.rotation.strategy``)."""
    staged_phase: Phase | None
    """The phase a claim records when :meth:`fresh_values` were staged before it."""

    @property
    def steps(self) -> Mapping[Phase, Step]:
        """For each phase of this strategy, the step that moves a journal on from it."""

    def fresh_values(self) -> dict[str, SecretValue]:
        """Values to stage before the claim (``{}``: stage nothing early)."""
