"""The target Secret: written for a rotation, fetched from Auth0, restored after drift.

The Secret a resource writes holds the client secret, client id and domain
under the keys the spec names (and the previous secret when asked); it carries
the managed-by label, the owner annotations and the rotation id
(``secret-revision``) that wrote it. A Secret owned by anyone else is never
touched (``SecretConflict``).

- :meth:`TargetSecrets.fetch` writes the current secret read from Auth0: at
  creation (``initialization: Fetch``), after a client change, and to restore
  a deleted or edited Secret (drift). Nothing changes in Auth0.
- :meth:`TargetSecrets.relocate` writes the current value where the spec now
  says, until a rotation held by ``minInterval`` runs.
"""

from __future__ import annotations

import secrets
from typing import Any

from auth0_rotator.auth0 import Auth0Client, Auth0Error, InsufficientScope
from auth0_rotator.decisions import Decision, SecretState
from auth0_rotator.kube import UNREAD, KubeStore, OwnerInfo, SecretConflict, decode_secret
from auth0_rotator.labels import OWNER_UID_ANNOTATION, REVISION_ANNOTATION, SECRET_KEY_ANNOTATION
from auth0_rotator.model import ClientSecretSpec, TenantSpec
from auth0_rotator.reporting import Reporter, Stop
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator.settings import EngineSettings
from auth0_rotator.tenants import TenantRegistry

__all__ = ["TargetSecrets"]


class TargetSecrets:
    """Writes the target Secrets of Auth0ClientSecrets."""

    def __init__(
        self,
        store: KubeStore,
        tenants: TenantRegistry,
        reporter: Reporter,
        settings: EngineSettings,
    ) -> None:
        self.store = store
        self.tenants = tenants
        self.reporter = reporter
        self.settings = settings

    @staticmethod
    def secret_state(
        secret: dict[str, Any] | None, owner: OwnerInfo, spec: ClientSecretSpec
    ) -> SecretState:
        """What :func:`decide` needs to know of the target Secret as read."""
        if secret is None:
            return SecretState(exists=False)
        if not KubeStore.is_owned_by(secret, owner):
            return SecretState(exists=True, owned=False)
        data = secret.get("data") or {}
        wanted = [*spec.keys.value_keys(spec.strategy), spec.keys.client_id, spec.keys.domain]
        return SecretState(
            exists=True,
            owned=True,
            resource_version=str((secret.get("metadata") or {}).get("resourceVersion", "")),
            complete=all(data.get(k) for k in wanted if k),
        )

    async def write_target(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        owner: OwnerInfo,
        tenant: TenantSpec | None,
        data: dict[str, SecretValue | str],
        value_key: str,
        revision: str,
        existing: dict[str, Any] | None = UNREAD,
    ) -> str:
        """Write the target Secret with ``data`` plus client id and domain; its new version.

        ``value_key`` is the key of the value itself (recorded on the Secret).
        ``existing`` saves a read when the caller has the Secret (the write is
        resourceVersion-checked against it). A foreign Secret: ``SecretConflict``.
        """
        values = dict(data)
        if spec.keys.client_id:
            values[spec.keys.client_id] = spec.client_id
        if spec.keys.domain and tenant is not None:
            values[spec.keys.domain] = tenant.domain
        try:
            return await self.store.write_owned_secret(
                owner,
                spec.secret_name,
                values,
                labels=spec.labels,
                annotations={
                    **spec.annotations,
                    REVISION_ANNOTATION: revision,
                    SECRET_KEY_ANNOTATION: value_key,
                },
                owner_reference=(
                    owner.owner_reference(controller=True)
                    if spec.deletion_policy == "Delete"
                    else None
                ),
                existing=existing,
            )
        except SecretConflict as exc:
            await self.reporter.fail(obj, "SecretConflict", str(exc), retry=False)

    async def fetch(
        self,
        obj: dict[str, Any],
        spec: ClientSecretSpec,
        decision: Decision,
        owner: OwnerInfo,
        tenant: TenantSpec,
        auth0: Auth0Client,
    ) -> None:
        """Write the secret Auth0 holds now into the target Secret (adoption or drift)."""
        try:
            value = await auth0.get_client_secret(spec.client_id)
        except Auth0Error as exc:
            if decision.trigger == "drift" and isinstance(exc, InsufficientScope):
                await self.reporter.fail(
                    obj,
                    "DriftNotRestored",
                    f"the Secret {spec.secret_name} was deleted or edited and cannot be restored "
                    "without the read:client_keys scope; grant it, or force a rotation",
                    retry=False,
                )
            await self.reporter.auth0_failure(obj, exc)
        revision = f"fetch-{secrets.token_hex(6)}"
        key = spec.keys.client_secret
        current = await self.store.read_secret(spec.namespace, spec.secret_name)
        unchanged = (
            current is not None
            and KubeStore.is_owned_by(current, owner)
            and self.secret_state(current, owner, spec).complete
            and decode_secret(current, spec.keys.client_secret) == value
        )
        if unchanged and current is not None:
            # Already right (e.g. only labels were edited, or another process just
            # wrote it): adopt it as is; rewriting would look like drift to others.
            rv = str((current.get("metadata") or {}).get("resourceVersion", ""))
            uid = ((current.get("metadata") or {}).get("annotations") or {}).get(
                OWNER_UID_ANNOTATION
            )
            if uid != owner.uid:
                # Written for an earlier resource of this name (a restore from backup, or
                # deleted and created again): this one takes it over, data untouched.
                rv = await self.store.take_back(owner, current)
            revision = str(
                ((current.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
                or revision
            )
        else:
            rv = await self.write_target(obj, spec, owner, tenant, {key: value}, key, revision)
        restored = decision.trigger == "drift"
        reason = "Restored" if restored else "Fetched"
        message = (
            f"Secret {spec.secret_name} restored from Auth0"
            if restored
            else f"Secret {spec.secret_name} holds the current secret of client {spec.client_id}"
        )
        adopted = decision.trigger == "initialization" and bool(
            (obj.get("status") or {}).get("clientRef")
        )
        await self.reporter.patch(
            obj,
            {
                **decision.consume,
                **({"restartRevision": revision} if adopted else {}),
                "secretName": spec.secret_name,
                "secretRevision": revision,
                "secretResourceVersion": rv,
                "conditions": self.reporter.conditions(obj, ("Ready", "True", reason, message)),
            },
        )
        await self.reporter.event(obj, "Normal", reason, message)

    async def relocate(
        self, obj: dict[str, Any], spec: ClientSecretSpec, status: dict[str, Any], owner: OwnerInfo
    ) -> None:
        """Write the current value where the spec now says, until the held rotation runs."""
        old_name = status.get("secretName") or spec.secret_name
        old = await self.store.read_secret(spec.namespace, old_name)
        value = None
        if old is not None and KubeStore.is_owned_by(old, owner):
            annotations = (old.get("metadata") or {}).get("annotations") or {}
            value = decode_secret(old, annotations.get(SECRET_KEY_ANNOTATION) or "")
        if value is None:
            raise Stop(self.reporter.now + self.settings.retry_after)
        tenant = await self.tenants.resolve(spec)
        key = spec.keys.client_secret
        revision = status.get("secretRevision") or "relocated"
        rv = await self.write_target(obj, spec, owner, tenant, {key: value}, key, revision)
        await self.reporter.patch(
            obj, {"secretName": spec.secret_name, "secretResourceVersion": rv}
        )
