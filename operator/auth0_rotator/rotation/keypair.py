"""Strategy ``KeyPair``: zero-downtime rotation with Private Key JWT (SPEC §8).

An application on Private Key JWT may hold two enabled public keys at once,
so the old and the new key overlap: consumers holding either authenticate
throughout. Phases (the driver's common tail runs from ``Applied`` to the
Secret write):

``Claimed``
    Nothing changed in Auth0 yet. Step: check the client uses Private Key JWT
    (else ``AuthMethodMismatch``) and has a free slot beside its current key
    (else ``CredentialLimit``: nothing is changed, nothing of anyone else is
    ever detached); note which enabled credentials this rotation retires
    (those it registered earlier, and ``spec.keyPair.adoptCredentialIds``);
    a resource created again under the name of one deleted mid-rotation takes
    its Secret back, and with it that earlier resource's keys: they are
    retired too, and when both enabled keys are that resource's, the one the
    Secret does not hold is detached first (its rollout was never finished);
    generate the key pair off the event loop and stage the private key;
    persist ``Staged``.
``Staged``
    Step: register the public key under a name that identifies this resource
    and rotation (``auth0-rotator/<uid>/<rotation id>``). Registering is not
    idempotent: resumed here, or after an answer lost, the client's
    credentials are listed by that name first, so a key is registered once.
    Persist ``Registered`` with the credential's id and kid.
``Registered``
    Step: enable it beside the current key (the enabled list is replaced
    whole, so re-sending it is harmless) -> ``Applied`` (not persisted).
``Applied``, ``Verified``
    The driver: verify with an assertion signed by the new key, write the
    Secret (private key, key id, algorithm, client id, domain), persist
    ``RollingOut``.
``RollingOut``
    Step: restart the targets and wait for their rollout (both keys work; a
    stalled rollout waits and says so), plus ``spec.keyPair.retireAfter``;
    then retire: detach the old key, delete it (and any key of ours left
    detached by an interrupted rotation), and close with ``status.credential``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping

from auth0_rotator.auth0 import Credential, OutcomeUnknown
from auth0_rotator.journal import Phase
from auth0_rotator.keypairs import generate_private_key, public_key_pem
from auth0_rotator.kube import KubeStore, OwnerInfo
from auth0_rotator.labels import OWNER_UID_ANNOTATION
from auth0_rotator.model import ClientSecretSpec
from auth0_rotator.rotation.crash import reached
from auth0_rotator.rotation.gate import wait_for_rollout
from auth0_rotator.rotation.strategy import Next, Rotation, Services, Step
from auth0_rotator.secretvalue import SecretValue

__all__ = ["MAX_ENABLED", "KeyPair", "credential_name", "credential_prefix"]

MAX_ENABLED = 2
"""Auth0 enables at most two credentials for Private Key JWT."""


def credential_prefix(owner: OwnerInfo) -> str:
    """The name prefix of every credential this resource registers."""
    return _prefix_of(owner.uid)


def _prefix_of(uid: str) -> str:
    return f"auth0-rotator/{uid}/"


def credential_name(owner: OwnerInfo, rotation_id: str) -> str:
    """The name of the credential a rotation registers (at most 128 characters)."""
    return f"{credential_prefix(owner)}{rotation_id}"


async def _algorithm(rotation: Rotation, services: Services) -> str:
    staged = (await services.staging.values(rotation.owner, rotation.journal.id)).get("algorithm")
    return staged.reveal() if staged else rotation.spec.key_pair.algorithm


async def _enabled(rotation: Rotation, services: Services) -> list[str]:
    """The client's enabled credentials; ``AuthMethodMismatch`` if it is not on Private Key JWT."""
    spec = rotation.spec
    methods = await rotation.auth0.get_auth_methods(spec.client_id)
    if not methods.private_key_jwt:
        method = methods.token_endpoint_auth_method or "no method"
        await services.fail(
            rotation,
            "AuthMethodMismatch",
            f"client {spec.client_id} authenticates with {method}, not Private Key JWT, so it "
            "has no keys to rotate: in Auth0 switch the application's authentication to "
            "Private Key JWT with a first public key (Credentials tab), or use strategy "
            "Generate or Rotate for a client secret",
            retry=False,
        )
    return list(methods.enabled or ())


def _earlier_prefix(rotation: Rotation) -> str | None:
    """The credential prefix of an earlier resource of this name whose Secret this one holds.

    Names are unique, so that resource is gone (deleted, perhaps mid-rotation,
    and created again, as GitOps tools do): its keys are this resource's now.
    """
    secret = rotation.secret
    if secret is None or not KubeStore.is_owned_by(secret, rotation.owner):
        return None
    uid = ((secret.get("metadata") or {}).get("annotations") or {}).get(OWNER_UID_ANNOTATION)
    if not uid or uid == rotation.owner.uid:
        return None
    return _prefix_of(uid)


def _held_credential(rotation: Rotation, known: Mapping[str, Credential]) -> str | None:
    """The credential whose kid the target Secret names (``keys.keyId``), if any."""
    key = rotation.spec.keys.key_id
    raw = ((rotation.secret or {}).get("data") or {}).get(key) if key else None
    if not raw:
        return None
    kid = base64.b64decode(raw).decode(errors="replace")
    return next((i for i, c in known.items() if c.kid == kid), None)


async def _prepare(rotation: Rotation, services: Services) -> Next:
    """``Claimed``: check the client can take a second key; generate and stage it."""
    spec, auth0, journal = rotation.spec, rotation.auth0, rotation.journal
    enabled = await _enabled(rotation, services)
    known = {c.id: c for c in await auth0.list_credentials(spec.client_id)}
    earlier = _earlier_prefix(rotation)
    ours = (credential_prefix(rotation.owner), *([earlier] if earlier else []))
    retiring = tuple(
        i
        for i in enabled
        if i in spec.key_pair.adopt_credential_ids
        or (i in known and known[i].name.startswith(ours))
    )
    if earlier:
        # The earlier resource's keys left detached are retired (deleted) too.
        retiring += tuple(
            i for i, c in known.items() if i not in enabled and c.name.startswith(earlier)
        )
        held = _held_credential(rotation, known)
        stale = [
            i for i in enabled if i != held and i in known and known[i].name.startswith(earlier)
        ]
        if held in enabled and stale and len(enabled) >= MAX_ENABLED:
            enabled = [i for i in enabled if i not in stale]
            await auth0.set_enabled_credentials(spec.client_id, enabled)
    if len(enabled) >= MAX_ENABLED:
        await services.fail(
            rotation, "CredentialLimit", _limit(rotation, enabled, retiring), retry=False
        )
    key = await asyncio.to_thread(generate_private_key, spec.key_pair.size)
    await services.staging.stage(
        rotation.owner,
        journal.id,
        value=key,
        algorithm=SecretValue(spec.key_pair.algorithm),
    )
    return Next(journal.at(Phase.STAGED, services.now, retiring=retiring))


def _limit(rotation: Rotation, enabled: list[str], retiring: tuple[str, ...]) -> str:
    spec = rotation.spec
    message = (
        f"client {spec.client_id} already has {len(enabled)} enabled credentials "
        f"({', '.join(enabled)}), the most Auth0 allows, so a new key cannot be enabled "
        "beside the current one; nothing was changed"
    )
    foreign = [i for i in enabled if i not in retiring]
    if foreign:
        return (
            f"{message}. {', '.join(foreign)} {'was' if len(foreign) == 1 else 'were'} not "
            "created by this resource: detach it in Auth0 if no consumer uses it, or list it "
            "in spec.keyPair.adoptCredentialIds so that rotations may retire it"
        )
    current = ((rotation.obj.get("status") or {}).get("credential") or {}).get("id")
    stale = [i for i in enabled if i != current]
    return (
        f"{message}. Both were registered by this resource (an earlier rotation was "
        f"interrupted): detach {' or '.join(stale)} in Auth0 once no consumer uses it"
    )


async def _find(rotation: Rotation, name: str) -> Credential | None:
    listed = await rotation.auth0.list_credentials(rotation.spec.client_id)
    return next((c for c in listed if c.name == name), None)


async def _register(rotation: Rotation, services: Services) -> Next:
    """``Staged``: register the public key once, and journal its id."""
    spec, auth0, owner, journal = rotation.spec, rotation.auth0, rotation.owner, rotation.journal
    name = credential_name(owner, journal.id)
    # Resumed: the register call may have been sent before the process stopped.
    found = None if rotation.fresh else await _find(rotation, name)
    key = await services.staging.value(owner, journal.id)
    if key is None:
        # Staging lost: a key registered for it (never enabled) is of no use to anyone.
        if found is not None:
            await auth0.delete_credential(spec.client_id, found.id)
            found = None
        key = await asyncio.to_thread(generate_private_key, spec.key_pair.size)
        await services.staging.stage(
            owner, journal.id, value=key, algorithm=SecretValue(spec.key_pair.algorithm)
        )
    if found is None:
        pem = await asyncio.to_thread(public_key_pem, key)
        algorithm = await _algorithm(rotation, services)
        try:
            found = await auth0.register_credential(
                spec.client_id, name=name, pem=pem, alg=algorithm
            )
        except OutcomeUnknown:
            # The answer was lost, maybe after Auth0 registered it: look before anything else.
            found = await _find(rotation, name)
            if found is None:
                raise
        reached("key-registered")
    return Next(
        journal.at(Phase.REGISTERED, services.now, credential_id=found.id, credential_kid=found.kid)
    )


async def _enable(rotation: Rotation, services: Services) -> Next:
    """``Registered``: enable the new key beside the current one."""
    spec, journal = rotation.spec, rotation.journal
    enabled = await _enabled(rotation, services)
    new = str(journal.credential_id)
    if new not in enabled:
        if len(enabled) >= MAX_ENABLED:
            # Someone enabled another key since this rotation began.
            await services.fail(
                rotation, "CredentialLimit", _limit(rotation, enabled, journal.retiring), retry=True
            )
        await rotation.auth0.set_enabled_credentials(spec.client_id, [*enabled, new])
    # Not persisted: resuming at Registered enables it again (the list is replaced whole).
    return Next(journal.at(Phase.APPLIED, services.now), persist=False)


async def _retire_when_rolled_out(rotation: Rotation, services: Services) -> Next:
    """``RollingOut``: restart and wait for the rollout, then retire the old key and close."""
    spec, journal = rotation.spec, rotation.journal
    await wait_for_rollout(
        rotation,
        services,
        waiting=(
            f"the new key of client {spec.client_id} is in Secret {spec.secret_name} and both "
            "keys are enabled; the old key is retired once every restart target runs the new one"
        ),
        hold=spec.key_pair.retire_after,
        hold_reason="the old key stays enabled (spec.keyPair.retireAfter)",
    )
    kept = await _retire(rotation)
    reached("retired")
    name = credential_name(rotation.owner, journal.id)
    credential = {"id": journal.credential_id, "kid": journal.credential_kid, "name": name}
    return Next(journal, close=True, status={"credential": credential}, note=_kept_note(kept))


async def _retire(rotation: Rotation) -> list[str]:
    """Detach and delete the retired keys (and keys of ours left detached); what stays on."""
    spec, journal, auth0 = rotation.spec, rotation.journal, rotation.auth0
    methods = await auth0.get_auth_methods(spec.client_id)
    enabled = list(methods.enabled or ())
    keep = [i for i in enabled if i not in journal.retiring]
    new = str(journal.credential_id)
    if new not in keep:
        # Someone detached the key the Secret now holds: it is this rotation's to keep.
        keep.append(new)
    if keep != enabled:
        await auth0.set_enabled_credentials(spec.client_id, keep)
    prefix = credential_prefix(rotation.owner)
    listed = await auth0.list_credentials(spec.client_id)
    doomed = [
        c.id
        for c in listed
        if c.id not in keep
        and c.id != journal.credential_id
        and (c.id in journal.retiring or c.name.startswith(prefix))
    ]
    for credential_id in doomed:
        await auth0.delete_credential(spec.client_id, credential_id)
    return [i for i in keep if i != journal.credential_id]


def _kept_note(kept: list[str]) -> str | None:
    if not kept:
        return None
    return (
        f"{', '.join(kept)} stays enabled (not created by this resource; list it in "
        "spec.keyPair.adoptCredentialIds to let rotations retire it)"
    )


class KeyPair:
    """Two overlapping Private Key JWT credentials: consumers never fail a token request."""

    name = "KeyPair"
    staged_phase: Phase | None = None
    after_target: Phase | None = Phase.ROLLING_OUT
    noun = "key"

    @property
    def steps(self) -> Mapping[Phase, Step]:
        """Check and stage, register, enable; after the Secret write wait, retire, close."""
        return {
            Phase.CLAIMED: _prepare,
            Phase.STAGED: _register,
            Phase.REGISTERED: _enable,
            Phase.ROLLING_OUT: _retire_when_rolled_out,
        }

    async def fresh_values(self, spec: ClientSecretSpec) -> dict[str, SecretValue]:
        """Nothing before the claim: the client is checked before a key is generated."""
        return {}

    async def verify(self, rotation: Rotation, value: SecretValue, services: Services) -> bool:
        """A token request with an assertion signed by the new key is accepted."""
        return await rotation.auth0.verify_private_key(
            rotation.spec.client_id,
            value,
            algorithm=await _algorithm(rotation, services),
            key_id=rotation.journal.credential_kid,
            within=services.settings.verify_timeout,
            interval=services.settings.verify_interval,
        )

    async def target_values(
        self, rotation: Rotation, value: SecretValue, services: Services
    ) -> dict[str, SecretValue | str]:
        """The private key, its credential's kid and its algorithm."""
        keys = rotation.spec.keys
        values: dict[str, SecretValue | str] = {keys.private_key: value}
        if keys.key_id and rotation.journal.credential_kid:
            values[keys.key_id] = rotation.journal.credential_kid
        if keys.algorithm:
            values[keys.algorithm] = await _algorithm(rotation, services)
        return values

    def value_key(self, spec: ClientSecretSpec) -> str:
        """``keys.privateKey``."""
        return spec.keys.private_key
