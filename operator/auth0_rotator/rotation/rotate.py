"""Strategy ``Rotate``: Auth0 makes the new value (``POST .../rotate-secret``).

rotate-secret is not idempotent: it is sent at most once per journal unless
its outcome is provably known, and never blindly retried. Phases (before the
driver's common tail from ``Applied``):

``Claimed``
    Step: remember the value from before (from the target Secret, else read
    from Auth0) in the staging Secret as ``previous``, persist ``Requested``.
    A journal sent back here by Auth0's refusal waits until ``retryAt``.
``Requested``
    rotate-secret is about to be sent, or was sent. Fresh from ``Claimed``:
    send it. Refused (4xx, 429, never sent): back to ``Claimed`` with
    ``retryAt``, so the trigger is retried, not lost. Resumed here, or sent
    with its answer lost: the outcome is unknown, so the value is read back
    (``read:client_keys``); if it is still ``previous``, rotate-secret had no
    effect and the journal goes back to ``Claimed``. Only if the secret cannot
    be read back is it rotated once more, once per journal (``rerotated``).
    A value staged already means it was applied: go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from auth0_rotator.auth0 import Auth0Error, InsufficientScope, OutcomeUnknown
from auth0_rotator.journal import Phase
from auth0_rotator.kube import KubeStore, decode_secret
from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.reporting import Stop
from auth0_rotator.rotation.strategy import ClientSecretStrategy, Next, Rotation, Services, Step
from auth0_rotator.secretvalue import SecretValue

__all__ = ["Rotate"]


async def _value_before(rotation: Rotation) -> SecretValue | None:
    """The secret before rotating: from the target Secret, else from Auth0 if readable."""
    secret, spec = rotation.secret, rotation.spec
    if secret is not None and KubeStore.is_owned_by(secret, rotation.owner):
        value = decode_secret(secret, spec.keys.client_secret)
        if value is not None:
            return value
    try:
        return await rotation.auth0.get_client_secret(spec.client_id)
    except Auth0Error:
        return None


async def _remember(rotation: Rotation, services: Services) -> Next:
    previous = await _value_before(rotation)
    values = {"previous": previous} if previous else {}
    await services.staging.stage(rotation.owner, rotation.journal.id, **values)
    return Next(rotation.journal.at(Phase.REQUESTED, services.now))


async def _rotate(rotation: Rotation, services: Services) -> Next:
    staged = await services.staging.value(rotation.owner, rotation.journal.id)
    if staged is not None:
        rotation.value = staged  # Requested with a staged value: applied already
    elif not rotation.fresh:
        rotation.value = await _recover(rotation, services)
    else:
        try:
            rotation.value = await rotation.auth0.rotate_client_secret(rotation.spec.client_id)
        except OutcomeUnknown:
            rotation.value = await _recover(rotation, services)
        except Auth0Error as exc:
            # Definitely not applied (4xx, 429, never sent): back to Claimed, so the
            # trigger is retried rather than lost, but not before retryAt.
            wait = (
                services.settings.retry_after if exc.retryable else services.settings.recheck_after
            )
            journal = rotation.journal.at(Phase.CLAIMED, services.now, retry_at=services.now + wait)
            await services.persist(rotation, journal)
            raise
    # Not persisted: Requested with a staged value resumes as Applied.
    return Next(rotation.journal.at(Phase.APPLIED, services.now), persist=False)


async def _recover(rotation: Rotation, services: Services) -> SecretValue:
    """Resolve an unknown rotate-secret outcome by reading the secret back."""
    journal, client_id = rotation.journal, rotation.spec.client_id
    try:
        current = await rotation.auth0.get_client_secret(client_id)
    except InsufficientScope:
        if journal.rerotated:
            await services.fail(
                rotation,
                "OutcomeUnknown",
                f"the outcome of rotate-secret for client {client_id} is unknown and "
                "the secret cannot be read back: grant read:client_keys to the management "
                "application so the operator can recover it",
                retry=False,
            )
        recovery = (
            "outcome unknown and read:client_keys is missing: rotated once more to learn "
            "the value; grant read:client_keys to avoid this"
        )
        await services.persist(
            rotation, journal.at(Phase.REQUESTED, services.now, rerotated=True, recovery=recovery)
        )
        await services.warn(rotation, "OutcomeUnknown", recovery)
        return await rotation.auth0.rotate_client_secret(client_id)
    previous = (await services.staging.values(rotation.owner, journal.id)).get("previous")
    if previous is not None and current == previous:
        # Provably not rotated: rotating now is the first rotation, not a second.
        recovery = "rotate-secret had no effect; rotated again"
        await services.persist(rotation, journal.at(Phase.CLAIMED, services.now, recovery=recovery))
        raise Stop(services.now)
    recovery = "outcome of rotate-secret was unknown; value read back from Auth0"
    rotation.journal = replace(journal, recovery=recovery)
    return current


class Rotate(ClientSecretStrategy):
    """Auth0 chooses the value; the operator makes sure it is requested once."""

    name = "Rotate"
    staged_phase: Phase | None = None

    @property
    def steps(self) -> Mapping[Phase, Step]:
        """``Claimed`` -> remember the value before; ``Requested`` -> rotate (or recover)."""
        return {Phase.CLAIMED: _remember, Phase.REQUESTED: _rotate}

    async def fresh_values(self, spec: ClientSecretSpec) -> dict[str, SecretValue]:
        """Nothing: Auth0 makes the value."""
        return {}
