"""Strategy ``Announce``: ``Generate`` with ``announce: true`` (SPEC §8).

The operator chooses the next client secret, so it can publish it before
Auth0 switches to it: a consumer that tries ``client_secret`` and, when Auth0
refuses it, ``next_client_secret`` never fails a token request during the
rotation. Phases (before the driver's common tail from ``Applied``):

``Claimed``
    As ``Generate``: stage a new strong random value (usually staged before
    the claim, which then records ``Staged``).
``Staged``
    Step: write the target Secret with the next value under
    ``keys.nextClientSecret`` beside the current secret (unchanged; read from
    Auth0 when the Secret does not have it yet), persist ``Announced`` with a
    restart revision of its own (``<rotation id>.announce``).
``Announced``
    Step: publish again if the Secret lost the next value meanwhile (deleted
    or edited); restart the targets and wait until every one runs with it
    (nothing is broken meanwhile: Auth0 is unchanged, so a stall only waits,
    and says so); then ``PATCH`` Auth0 with it, idempotent -> ``Applied``.
    Turning ``announce`` off ends the wait at once.

The common tail then verifies, writes the Secret as ``Generate`` does
(``clientSecret`` = new, ``previousClientSecret`` = old when configured, the
next key gone), restarts the targets a second time and closes.
"""

from __future__ import annotations

from collections.abc import Mapping

from auth0_rotator.auth0 import Auth0Error
from auth0_rotator.journal import Phase
from auth0_rotator.kube import KubeStore, decode_secret
from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.rotation.crash import reached
from auth0_rotator.rotation.gate import wait_for_rollout
from auth0_rotator.rotation.generate import stage, stage_new_value
from auth0_rotator.rotation.strategy import ClientSecretStrategy, Next, Rotation, Services, Step
from auth0_rotator.secretvalue import SecretValue, generate_client_secret

__all__ = ["Announce", "announce_revision"]


def announce_revision(rotation_id: str) -> str:
    """The restart revision of a rotation's announcement (its second restart uses the id)."""
    return f"{rotation_id}.announce"


async def _announced_data(rotation: Rotation, value: SecretValue) -> dict[str, SecretValue | str]:
    """The Secret during the announcement: the current secret, unchanged, and the next one."""
    keys, secret = rotation.spec.keys, rotation.secret
    data: dict[str, SecretValue | str] = {keys.next_client_secret: value}
    owned = secret is not None and KubeStore.is_owned_by(secret, rotation.owner)
    current = decode_secret(secret, keys.client_secret) if owned and secret else None
    if current is None:
        try:
            current = await rotation.auth0.get_client_secret(rotation.spec.client_id)
        except Auth0Error:
            current = None  # nothing to keep (no read:client_keys): only the next one
    if current is not None:
        data[keys.client_secret] = current
    if keys.previous_client_secret and owned and secret is not None:
        previous = decode_secret(secret, keys.previous_client_secret)
        if previous is not None:
            data[keys.previous_client_secret] = previous
    return data


async def _publish(rotation: Rotation, services: Services, value: SecretValue) -> str:
    """Write the announcement's Secret (current and next value); its new resourceVersion."""
    spec = rotation.spec
    rv = await services.targets.write_target(
        rotation.obj,
        spec,
        rotation.owner,
        rotation.tenant,
        await _announced_data(rotation, value),
        spec.keys.client_secret,
        announce_revision(rotation.journal.id),
        existing=rotation.secret,
    )
    # Later writes of this reconcile check against the Secret as it is now.
    rotation.secret = await services.targets.store.read_secret(spec.namespace, spec.secret_name)
    return rv


def _published(rotation: Rotation) -> SecretValue | None:
    """The next value in the target Secret, if the Secret is ours and has it."""
    secret = rotation.secret
    if secret is None or not KubeStore.is_owned_by(secret, rotation.owner):
        return None
    return decode_secret(secret, rotation.spec.keys.next_client_secret)


async def _announce(rotation: Rotation, services: Services) -> Next:
    """``Staged``: publish the next value beside the current one; persist ``Announced``."""
    journal = rotation.journal
    value = await services.staging.value(rotation.owner, journal.id)
    if value is None:
        # Staging lost before anything was published or changed: a fresh value.
        value = await stage_new_value(rotation, services)
    revision = announce_revision(journal.id)
    rv = await _publish(rotation, services, value)
    reached("next-written")
    return Next(
        journal.at(Phase.ANNOUNCED, services.now),
        status={"restartRevision": revision, "secretResourceVersion": rv},
    )


async def _switch_when_announced(rotation: Rotation, services: Services) -> Next:
    """``Announced``: once every target runs with the next value, set it in Auth0."""
    spec, owner, journal = rotation.spec, rotation.owner, rotation.journal
    value = await services.staging.value(owner, journal.id)
    if value is None:
        # The published value is the one to set: take it from the Secret.
        value = _published(rotation)
        if value is None:
            # Neither staged nor published: announce a fresh one (Auth0 is untouched).
            await stage_new_value(rotation, services)
            return Next(journal.at(Phase.STAGED, services.now))
        await services.staging.stage(owner, journal.id, value=value)
    if spec.announce:
        if _published(rotation) != value:
            # The Secret was deleted or edited meanwhile: publish again (same
            # revision, so the targets are not restarted once more for it).
            await _publish(rotation, services, value)
        await wait_for_rollout(
            rotation,
            services,
            waiting=(
                f"the next secret of client {spec.client_id} is in Secret {spec.secret_name} "
                f"(key {spec.keys.next_client_secret}) beside the current one and Auth0 is "
                "unchanged; it is set in Auth0 once every restart target runs with it"
            ),
        )
    await rotation.auth0.set_client_secret(spec.client_id, value)
    rotation.value = value
    # Not persisted: resuming at Announced sets the same value again (idempotent).
    return Next(journal.at(Phase.APPLIED, services.now), persist=False)


class Announce(ClientSecretStrategy):
    """``Generate`` with the next value published to consumers before Auth0 switches."""

    name = "Announce"
    staged_phase: Phase | None = Phase.STAGED

    @property
    def steps(self) -> Mapping[Phase, Step]:
        """Stage; announce; once rolled out, set it in Auth0."""
        return {
            Phase.CLAIMED: stage,
            Phase.STAGED: _announce,
            Phase.ANNOUNCED: _switch_when_announced,
        }

    async def fresh_values(self, spec: ClientSecretSpec) -> dict[str, SecretValue]:
        """A new value, staged before the claim."""
        return {"value": generate_client_secret()}
