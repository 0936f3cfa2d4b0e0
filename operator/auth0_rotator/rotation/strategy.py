"""What a rotation strategy is: its own phases and steps, on top of the journal driver.

A strategy knows how a new value comes to be held by Auth0 — ``Generate``
makes it and sets it, ``Rotate`` asks Auth0 to make one — and nothing else.
The :class:`~auth0_rotator.rotation.driver.JournalDriver` owns what every
strategy shares: the claim, resuming and taking over journals, the fenced
phase writes, crash points, retry timing and the common tail (verify, write
the target Secret, restart, deliver to Auth0-side targets, close).

A strategy module provides one object that satisfies :class:`Strategy` and is
registered in :data:`auth0_rotator.rotation.STRATEGIES`:

- ``fresh_values(spec)``: what to stage before the claim (so the claim can
  record the phase that follows), or nothing;
- ``staged_phase``: the phase the claim records when that worked;
- ``steps``: for each of the strategy's phases, the step that moves a journal
  on from it. A step returns the next journal (:class:`Next`); reaching
  ``Applied`` means Auth0 holds the value, which is then in
  :attr:`Rotation.value` or staged. A step may also close the journal
  (``Next.close``), for phases after the common tail;
- ``verify(rotation, value, services)``: whether Auth0 accepts the value
  (``Applied``);
- ``target_values(rotation, value, services)``: what the target Secret holds besides
  the client id and domain, and ``value_key(spec)`` the key of the value
  itself;
- ``after_target``: the phase persisted once the Secret is written and the
  targets restarted, when the strategy has more to do (``KeyPair`` waits for
  the rollout and retires the old key); ``None`` closes the journal there.

:class:`ClientSecretStrategy` is the common base of the strategies whose value
is a client secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn, Protocol

from auth0_rotator.auth0 import Auth0Client
from auth0_rotator.fetching import TargetSecrets
from auth0_rotator.journal import Phase, RotationJournal
from auth0_rotator.kube import KubeStore, OwnerInfo, decode_secret
from auth0_rotator.model import ClientSecretSpec, TenantSpec
from auth0_rotator.reporting import Reporter
from auth0_rotator.restarting import Restarter
from auth0_rotator.rotation.staging import StagingStore
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator.settings import EngineSettings

__all__ = ["ClientSecretStrategy", "Next", "Rotation", "Services", "Step", "Strategy"]


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
    """A step's outcome: the journal to go on with; ``persist`` it before the next step.

    ``status``: fields written together with the journal (when persisted or
    closed). ``close``: the rotation is done; the driver closes the journal,
    adding ``note`` to the closing message.
    """

    journal: RotationJournal
    persist: bool = True
    close: bool = False
    status: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


class Services(Protocol):
    """What the driver lends a strategy's steps."""

    staging: StagingStore
    settings: EngineSettings
    reporter: Reporter
    restarter: Restarter
    targets: TargetSecrets

    @property
    def now(self) -> datetime:
        """The engine's clock."""

    async def persist(
        self,
        rotation: Rotation,
        journal: RotationJournal,
        status: dict[str, Any] | None = None,
    ) -> None:
        """Write ``journal`` (and ``status`` fields), fenced: a process that lost it stops."""

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
    after_target: Phase | None
    """Persisted after the Secret write and restart when there is more to do, else None."""
    noun: str
    """What the value is, for messages ("secret", "key")."""

    @property
    def steps(self) -> Mapping[Phase, Step]:
        """For each phase of this strategy, the step that moves a journal on from it."""

    async def fresh_values(self, spec: ClientSecretSpec) -> dict[str, SecretValue]:
        """Values to stage before the claim (``{}``: stage nothing early)."""

    async def verify(self, rotation: Rotation, value: SecretValue, services: Services) -> bool:
        """Whether Auth0 accepts ``value`` (asked again until the verify timeout)."""

    async def target_values(
        self, rotation: Rotation, value: SecretValue, services: Services
    ) -> dict[str, SecretValue | str]:
        """The target Secret's data for ``value``, without client id and domain."""

    def value_key(self, spec: ClientSecretSpec) -> str:
        """The Secret key holding the value itself."""


class ClientSecretStrategy:
    """What the strategies whose value is a client secret share (``Generate``, ``Rotate``)."""

    after_target: Phase | None = None
    noun = "secret"

    async def verify(self, rotation: Rotation, value: SecretValue, services: Services) -> bool:
        """A client-credentials token request with the secret is accepted."""
        return await rotation.auth0.verify_client_secret(
            rotation.spec.client_id,
            value,
            within=services.settings.verify_timeout,
            interval=services.settings.verify_interval,
        )

    async def target_values(
        self, rotation: Rotation, value: SecretValue, services: Services
    ) -> dict[str, SecretValue | str]:
        """The secret, and the one before it when ``keys.previousClientSecret`` is set."""
        keys, current = rotation.spec.keys, rotation.secret
        values: dict[str, SecretValue | str] = {keys.client_secret: value}
        owned = current is not None and KubeStore.is_owned_by(current, rotation.owner)
        if keys.previous_client_secret and owned and current is not None:
            previous = decode_secret(current, keys.client_secret)
            if previous == value:
                # Resumed after the write: keep the previous value already there.
                previous = decode_secret(current, keys.previous_client_secret)
            if previous is not None:
                values[keys.previous_client_secret] = previous
        return values

    def value_key(self, spec: ClientSecretSpec) -> str:
        """``keys.clientSecret``."""
        return spec.keys.client_secret
