"""Secrets the operator owns: read, written (never someone else's), deleted as written.

Ownership is the managed-by label plus the owner annotations (namespace/name
and uid); a Secret without them is never overwritten (:class:`SecretConflict`).
Values enter and leave as :class:`SecretValue`; nothing here logs data.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from auth0_rotator.kube._base import ApiAccess
from auth0_rotator.kube._echoes import DELETED, Echoes
from auth0_rotator.kube._errors import Conflict, KubeError, SecretConflict, api_errors
from auth0_rotator.labels import (
    KEYS_ANNOTATION,
    MANAGED_BY,
    OWNER_ANNOTATION,
    OWNER_UID_ANNOTATION,
    ROLE_LABEL,
)
from auth0_rotator.model import GROUP, VERSION
from auth0_rotator.secretvalue import SecretValue

__all__ = ["UNREAD", "OwnerInfo", "SecretAccess", "decode_secret"]

_MERGE = "application/merge-patch+json"

UNREAD: Any = object()
"""``write_owned_secret(existing=UNREAD)``: read the Secret before writing it."""


@dataclass(frozen=True)
class OwnerInfo:
    """The Auth0ClientSecret a Secret belongs to."""

    namespace: str
    name: str
    uid: str

    @property
    def ref(self) -> str:
        """``namespace/name``, the value of the owner annotation."""
        return f"{self.namespace}/{self.name}"

    def owner_reference(self, controller: bool) -> dict[str, Any]:
        """An ownerReference to the Auth0ClientSecret."""
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Auth0ClientSecret",
            "name": self.name,
            "uid": self.uid,
            "controller": controller,
            "blockOwnerDeletion": False,
        }


def decode_secret(secret: dict[str, Any], key: str) -> SecretValue | None:
    """The value of ``key`` in a Secret dict, or ``None`` if absent or empty."""
    raw = (secret.get("data") or {}).get(key)
    if not raw:
        return None
    return SecretValue(base64.b64decode(raw).decode("utf-8", "replace"))


def _encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


class SecretAccess(ApiAccess, Echoes):
    """Secrets, owned by Auth0ClientSecrets."""

    def __init__(self, api: Any) -> None:
        super().__init__(api)
        # Staging Secrets this process wrote and has not deleted: (namespace, name) -> version.
        self._staging_versions: dict[tuple[str, str], str] = {}

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Secret as a dict, or ``None`` if it does not exist."""
        try:
            with api_errors(f"read Secret {namespace}/{name}"):
                secret = await self.core.read_namespaced_secret(name, namespace)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return self._plain(secret)

    @staticmethod
    def owner_of(secret: dict[str, Any]) -> str | None:
        """The ``namespace/name`` a managed Secret belongs to, if it is managed."""
        meta = secret.get("metadata") or {}
        labels = meta.get("labels") or {}
        if not MANAGED_BY.items() <= labels.items():
            return None
        owner = (meta.get("annotations") or {}).get(OWNER_ANNOTATION)
        return str(owner) if owner else None

    @classmethod
    def is_owned_by(cls, secret: dict[str, Any], owner: OwnerInfo, role: str | None = None) -> bool:
        """Whether ``secret`` carries ``owner``'s label and ``namespace/name`` annotation.

        With ``role`` its role label must say so too, and the uid must be the
        owner's (``staging``: a pending value of that very resource). A target
        Secret written for an earlier resource of the same name (deleted, then
        created again: names are unique, so that one is gone) is the owner's:
        recreating a resource, as GitOps tools do, takes its Secret back.
        """
        if cls.owner_of(secret) != owner.ref:
            return False
        meta = secret.get("metadata") or {}
        uid = (meta.get("annotations") or {}).get(OWNER_UID_ANNOTATION)
        return role is None or (
            (meta.get("labels") or {}).get(ROLE_LABEL) == role and uid == owner.uid
        )

    async def write_owned_secret(
        self,
        owner: OwnerInfo,
        name: str,
        values: dict[str, SecretValue | str],
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
        owner_reference: dict[str, Any] | None,
        role: str = "target",
        existing: dict[str, Any] | None = UNREAD,
        create_only: bool = False,
    ) -> str:
        """Create or update a Secret ``owner`` manages; return its new resourceVersion.

        Keys this resource wrote before and no longer writes are removed; other
        keys are left alone. A Secret owned by anyone else raises
        :class:`SecretConflict` and is not touched. ``existing`` saves the read
        when the caller has the Secret already (``None``: believed absent); the
        write is resourceVersion-checked against it either way. With
        ``create_only`` an existing Secret is never touched: :class:`Conflict`.
        """
        data = {
            k: _encode(v.reveal() if isinstance(v, SecretValue) else v) for k, v in values.items()
        }
        meta_labels = {**labels, **MANAGED_BY, ROLE_LABEL: role}
        meta_annotations = {
            **annotations,
            OWNER_ANNOTATION: owner.ref,
            OWNER_UID_ANNOTATION: owner.uid,
            KEYS_ANNOTATION: ",".join(sorted(values)),
        }
        if create_only:
            existing = None
        assumed = existing is not UNREAD
        if not assumed:
            existing = await self.read_secret(owner.namespace, name)
        if existing is None:
            body: dict[str, Any] = {
                "metadata": {
                    "name": name,
                    "namespace": owner.namespace,
                    "labels": meta_labels,
                    "annotations": meta_annotations,
                },
                "type": "Opaque",
                "data": data,
            }
            if owner_reference:
                body["metadata"]["ownerReferences"] = [owner_reference]
            try:
                with api_errors(f"create Secret {owner.namespace}/{name}"):
                    created = await self.core.create_namespaced_secret(owner.namespace, body)
            except Conflict:
                if create_only:
                    raise Conflict(f"Secret {owner.namespace}/{name} exists already") from None
                # Only a guess was wrong (e.g. a leftover): read it and update it.
                existing = await self.read_secret(owner.namespace, name) if assumed else None
                if existing is None:
                    raise Conflict(f"Secret {owner.namespace}/{name} changed meanwhile") from None
            else:
                version = str(created.metadata.resource_version)
                self._wrote_secret(owner.namespace, name, version, role)
                return version
        if not self.is_owned_by(existing, owner):
            raise SecretConflict(owner.namespace, name, self.owner_of(existing), owner.ref)
        meta = existing.get("metadata") or {}
        previous = set(
            filter(None, ((meta.get("annotations") or {}).get(KEYS_ANNOTATION) or "").split(","))
        )
        patch_data: dict[str, str | None] = {k: None for k in previous - set(values)}
        patch_data.update(data)
        refs = [r for r in (meta.get("ownerReferences") or []) if r.get("uid") != owner.uid]
        if owner_reference:
            refs.append(owner_reference)
        patch = {
            "metadata": {
                "resourceVersion": meta.get("resourceVersion"),
                "labels": meta_labels,
                "annotations": meta_annotations,
                "ownerReferences": refs,
            },
            "data": patch_data,
        }
        with api_errors(f"write Secret {owner.namespace}/{name}"):
            updated = await self.core.patch_namespaced_secret(
                name, owner.namespace, patch, _content_type=_MERGE
            )
        # resourceVersion-checked: the new version holds nothing but this write.
        version = str(updated.metadata.resource_version)
        self._wrote_secret(owner.namespace, name, version, role)
        return version

    async def take_back(self, owner: OwnerInfo, secret: dict[str, Any]) -> str:
        """Record ``owner``'s uid on a target Secret an earlier resource of its name wrote.

        Restored from a backup, or kept (``deletionPolicy: Retain``) while the
        resource was deleted and created again: only the uid annotation changes,
        resourceVersion-checked; the data is left exactly as it is.
        """
        meta = secret.get("metadata") or {}
        name = str(meta.get("name"))
        patch = {
            "metadata": {
                "resourceVersion": meta.get("resourceVersion"),
                "annotations": {OWNER_UID_ANNOTATION: owner.uid},
            }
        }
        with api_errors(f"take back Secret {owner.namespace}/{name}"):
            updated = await self.core.patch_namespaced_secret(
                name, owner.namespace, patch, _content_type=_MERGE
            )
        version = str(updated.metadata.resource_version)
        self._wrote_secret(owner.namespace, name, version, "target")
        return version

    def _wrote_secret(self, namespace: str, name: str, version: str, role: str) -> None:
        self.expect_echo("secrets", namespace, name, version)
        if role == "staging":
            self._staging_versions[(namespace, name)] = version

    async def delete_owned_secret(
        self, owner: OwnerInfo, name: str, *, only_as_written: bool = False
    ) -> None:
        """Delete a Secret if (and only if) ``owner`` manages it.

        A staging Secret this process wrote is deleted on the condition that it is
        still the version written (no read needed); anything else is read first.
        With ``only_as_written`` nothing but that version is ever deleted: a
        Secret someone wrote since is left alone.
        """
        known = self._staging_versions.pop((owner.namespace, name), None)
        if known is not None:
            try:
                with api_errors(f"delete Secret {owner.namespace}/{name}"):
                    await self.core.delete_namespaced_secret(
                        name, owner.namespace, body={"preconditions": {"resourceVersion": known}}
                    )
            except Conflict:
                pass  # changed since we wrote it: decide from what it is now
            except KubeError as exc:
                if exc.status == 404:
                    return
                raise
            else:
                self.expect_echo("secrets", owner.namespace, name, DELETED)
                return
        if only_as_written:
            return
        existing = await self.read_secret(owner.namespace, name)
        if existing is None or not self.is_owned_by(existing, owner):
            return
        try:
            with api_errors(f"delete Secret {owner.namespace}/{name}"):
                await self.core.delete_namespaced_secret(name, owner.namespace)
        except KubeError as exc:
            if exc.status != 404:
                raise
        else:
            self.expect_echo("secrets", owner.namespace, name, DELETED)
