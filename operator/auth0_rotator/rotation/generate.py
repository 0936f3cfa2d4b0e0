"""Strategy ``Generate``: the operator makes the new value and sets it in Auth0 with PATCH.

Phases (before the driver's common tail from ``Applied``):

``Claimed``
    Nothing staged yet (usually the value is staged, create-only, just before
    the claim, and the claim records ``Staged`` directly). Step: stage a new
    strong random value, persist ``Staged``.
``Staged``
    The value is in the staging Secret; Auth0 may or may not hold it. Step:
    ``PATCH /api/v2/clients/{id}`` with it. PATCH is idempotent, so resuming
    here simply sets the same value again; ``Applied`` is therefore not
    persisted on the way. A staging Secret lost before Auth0 was touched is
    replaced by a fresh value.
"""

from __future__ import annotations

from collections.abc import Mapping

from auth0_rotator.journal import Phase
from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.rotation.strategy import ClientSecretStrategy, Next, Rotation, Services, Step
from auth0_rotator.secretvalue import SecretValue, generate_client_secret

__all__ = ["Generate", "stage", "stage_new_value"]


async def stage_new_value(rotation: Rotation, services: Services) -> SecretValue:
    """Make a new strong random value and stage it for this rotation."""
    value = generate_client_secret()
    await services.staging.stage(rotation.owner, rotation.journal.id, value=value)
    return value


async def stage(rotation: Rotation, services: Services) -> Next:
    """``Claimed``: stage a new value, persist ``Staged``."""
    await stage_new_value(rotation, services)
    return Next(rotation.journal.at(Phase.STAGED, services.now))


async def _set_in_auth0(rotation: Rotation, services: Services) -> Next:
    value = await services.staging.value(rotation.owner, rotation.journal.id)
    if value is None:
        # Staging lost before Auth0 was touched: stage a fresh value.
        value = await stage_new_value(rotation, services)
    await rotation.auth0.set_client_secret(rotation.spec.client_id, value)
    rotation.value = value
    # Not persisted: resuming at Staged sets the same value again (idempotent).
    return Next(rotation.journal.at(Phase.APPLIED, services.now), persist=False)


class Generate(ClientSecretStrategy):
    """The operator chooses the value (at least 48 URL-safe characters)."""

    name = "Generate"
    staged_phase: Phase | None = Phase.STAGED

    @property
    def steps(self) -> Mapping[Phase, Step]:
        """``Claimed`` -> stage; ``Staged`` -> set in Auth0."""
        return {Phase.CLAIMED: stage, Phase.STAGED: _set_in_auth0}

    async def fresh_values(self, spec: ClientSecretSpec) -> dict[str, SecretValue]:
        """A new value, staged before the claim."""
        return {"value": generate_client_secret()}
