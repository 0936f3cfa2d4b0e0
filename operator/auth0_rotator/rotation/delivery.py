"""Auth0-side targets: the new value also goes where Auth0's own code reads secrets.

``spec.auth0Targets`` name Action secrets (the Action is deployed after),
rules-config keys and ``client_metadata`` keys of other applications. They are
written after the target Secret, in phase ``Delivering``: every write is
idempotent and progress is journaled after each target (``delivered``), so a
crash repeats at most the target that was in flight, and a failing target
never holds back what is already delivered or the workloads' restart.
"""

from __future__ import annotations

from typing import Any

from auth0_rotator.auth0 import Auth0Error
from auth0_rotator.journal import Phase
from auth0_rotator.reporting import Stop
from auth0_rotator.rotation.strategy import Rotation, Services

__all__ = ["deliver", "target_label"]


def target_label(target: dict[str, Any]) -> str:
    """A short name for an ``auth0Targets`` entry, for the journal and messages."""
    if "actionSecret" in target:
        t = target["actionSecret"]
        return f"action {t.get('actionId')} secret {t.get('name')}"
    if "rulesConfig" in target:
        return f"rules config {target['rulesConfig'].get('key')}"
    t = target.get("clientMetadata") or {}
    return f"client_metadata {t.get('key')} of client {t.get('clientId')}"


async def deliver(rotation: Rotation, services: Services) -> None:
    """Write the value to each of ``spec.auth0Targets`` not delivered yet."""
    value = await services.staging.value(rotation.owner, rotation.journal.id)
    if value is None:
        raise Stop(services.now + services.settings.retry_after)
    for index, target in enumerate(rotation.spec.auth0_targets):
        label = target_label(target)
        if label in rotation.journal.delivered:
            continue
        auth0 = rotation.auth0
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
            await services.fail(
                rotation,
                exc.reason,
                f"auth0Targets[{index}] ({label}) was not updated: {exc.message}; the "
                "Secret already holds the new value and the rotation finishes once this "
                "target is updated",
                retry=exc.retryable,
            )
        journal = rotation.journal.at(
            Phase.DELIVERING, services.now, delivered=(*rotation.journal.delivered, label)
        )
        await services.persist(rotation, journal)
