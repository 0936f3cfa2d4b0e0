"""The staging Secret: where a rotation's pending values live until the target holds them.

One staging Secret per Auth0ClientSecret (``<name>.staging.auth0rotator.dev``),
owned by it (label, owner annotations with its uid, role ``staging`` and an
ownerReference, so it goes with the resource), annotated with the rotation id
whose values it holds. A Secret at that name that is not ours is never read
nor overwritten. Keys: ``value`` (the new secret, or ``KeyPair``'s private
key), for ``Rotate`` ``previous`` (the value before rotate-secret, to tell an
unknown outcome apart), for ``KeyPair`` ``algorithm`` (the key's, fixed at
its generation).

What this process last wrote or read is cached per owner and rotation: it
saves a read per step, while the journal's fenced phase writes remain what
keeps two processes apart.
"""

from __future__ import annotations

from typing import Any

from auth0_rotator.kube import Conflict, KubeStore, OwnerInfo, SecretConflict, decode_secret
from auth0_rotator.labels import ROTATION_ID_ANNOTATION
from auth0_rotator.secretvalue import SecretValue

__all__ = ["StagingStore", "StagingTaken", "staging_secret_name"]

_KEYS = ("value", "previous", "algorithm")


def staging_secret_name(resource_name: str) -> str:
    """Name of the staging Secret that holds a rotation's pending value."""
    return f"{resource_name}.staging.auth0rotator.dev"


class StagingTaken(Exception):
    """A Secret someone else wrote holds the staging Secret's name."""


class StagingStore:
    """Reads and writes staging Secrets through the Kubernetes adapter."""

    def __init__(self, store: KubeStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[str, dict[str, SecretValue]]] = {}
        """Owner uid -> (rotation id, values) as this process last wrote or read them."""

    async def prestage(
        self, owner: OwnerInfo, rotation_id: str, values: dict[str, SecretValue]
    ) -> bool:
        """Create the staging Secret for a rotation not claimed yet; ``False`` if one exists.

        Only ever creates: a staging Secret already there (a leftover, or another
        process's rotation) is never overwritten here.
        """
        try:
            await self._write(owner, rotation_id, values, create_only=True)
        except Conflict:
            return False
        self._cache[owner.uid] = (rotation_id, dict(values))
        return True

    def claimed(self, owner: OwnerInfo, rotation_id: str, values: dict[str, SecretValue]) -> None:
        """A rotation was claimed with ``values`` staged (``{}``: nothing staged yet)."""
        self._cache[owner.uid] = (rotation_id, dict(values))

    async def values(self, owner: OwnerInfo, rotation_id: str) -> dict[str, SecretValue]:
        """The staged values of this rotation (empty if the Secret holds another's, or none)."""
        cached = self._cache.get(owner.uid)
        if cached is not None and cached[0] == rotation_id:
            return dict(cached[1])
        secret = await self.store.read_secret(owner.namespace, staging_secret_name(owner.name))
        if secret is None or not KubeStore.is_owned_by(secret, owner, role="staging"):
            # Nothing read from a Secret someone else wrote at that name is ever used.
            return {}
        annotations = (secret.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ROTATION_ID_ANNOTATION) != rotation_id:
            return {}
        found = {k: decode_secret(secret, k) for k in _KEYS}
        values = {k: v for k, v in found.items() if v is not None}
        self._cache[owner.uid] = (rotation_id, values)
        return dict(values)

    async def value(self, owner: OwnerInfo, rotation_id: str) -> SecretValue | None:
        """The staged new value of this rotation, if any."""
        return (await self.values(owner, rotation_id)).get("value")

    async def stage(self, owner: OwnerInfo, rotation_id: str, **values: SecretValue) -> None:
        """Write ``values`` into the staging Secret, keeping the other keys of this rotation.

        Raises :class:`StagingTaken` when a Secret that is not ours holds the name.
        """
        current = await self.values(owner, rotation_id)
        merged = {**current, **values}
        try:
            # Nothing staged for this rotation yet: most likely no staging Secret at
            # all, so create it (a leftover is read and updated instead).
            await self._write(owner, rotation_id, merged, **({} if current else {"existing": None}))
        except SecretConflict as exc:
            raise StagingTaken(str(exc)) from None
        self._cache[owner.uid] = (rotation_id, merged)

    def forget(self, owner: OwnerInfo) -> None:
        """Drop what is cached for ``owner`` (its journal is closed)."""
        self._cache.pop(owner.uid, None)

    async def delete(self, owner: OwnerInfo, *, only_as_written: bool = False) -> None:
        """Delete the staging Secret if it is ours (``only_as_written``: if unchanged since)."""
        await self.store.delete_owned_secret(
            owner, staging_secret_name(owner.name), only_as_written=only_as_written
        )

    async def _write(
        self, owner: OwnerInfo, rotation_id: str, values: dict[str, SecretValue], **how: Any
    ) -> None:
        await self.store.write_owned_secret(
            owner,
            staging_secret_name(owner.name),
            dict(values),
            labels={},
            annotations={ROTATION_ID_ANNOTATION: rotation_id},
            owner_reference=owner.owner_reference(controller=True),
            role="staging",
            **how,
        )
