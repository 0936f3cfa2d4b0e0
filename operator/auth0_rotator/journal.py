"""The rotation journal: what ``status.rotation`` records about an unfinished rotation.

:class:`RotationJournal` is a frozen record with a :class:`Phase`, parsed from
the status with :meth:`RotationJournal.from_status` and written back with
:meth:`RotationJournal.as_status`: the rest of the code never handles the raw
dict. The on-cluster format (camelCase keys, phase names) is public: an
operator resumes journals written by earlier releases, so fields are only
ever added.

Each phase is persisted before the step that depends on it (see
:mod:`auth0_rotator.rotation.driver` for the common phases and the strategy
modules for theirs). The value itself never appears here: it lives in the
staging Secret.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from auth0_rotator.schedule import format_time, parse_time

__all__ = ["Phase", "RotationJournal"]


class Phase(StrEnum):
    """Where an unfinished rotation stands (``status.rotation.phase``)."""

    CLAIMED = "Claimed"
    """The trigger is consumed; nothing is staged or changed yet."""
    STAGED = "Staged"
    """``Generate``: the new value is in the staging Secret; Auth0 may not hold it yet."""
    REQUESTED = "Requested"
    """``Rotate``: rotate-secret is (about to be) sent; its outcome may be unknown."""
    APPLIED = "Applied"
    """Auth0 holds the staged value; written only when verification failed (retries verify)."""
    VERIFIED = "Verified"
    """Auth0 accepts the value: the fence before the target Secret is written."""
    DELIVERING = "Delivering"
    """The Secret holds the value; ``auth0Targets`` are still being written."""
    ANNOUNCED = "Announced"
    """Announced ``Generate``: the Secret holds the next value beside the current one and the
    targets are restarting with it; Auth0 is unchanged until every target runs it."""
    REGISTERED = "Registered"
    """``KeyPair``: the new public key is registered in Auth0 (``credentialId``); not enabled
    yet, or enabled beside the old one."""
    ROLLING_OUT = "RollingOut"
    """``KeyPair``: the Secret holds the new key and the targets are restarting; both keys
    stay enabled until every target runs the new one, then the old one is retired."""


_KEYS = {
    "id": "id",
    "phase": "phase",
    "trigger": "trigger",
    "strategy": "strategy",
    "client_id": "clientId",
    "tenant": "tenant",
    "started_at": "startedAt",
    "renewed_at": "renewedAt",
    "holder": "holder",
    "rerotated": "rerotated",
    "recovery": "recovery",
    "delivered": "delivered",
    "retry_at": "retryAt",
    "credential_id": "credentialId",
    "credential_kid": "credentialKid",
    "retiring": "retiring",
}
"""Field name -> status key (the CRD declares every one of these)."""


@dataclass(frozen=True)
class RotationJournal:
    """``status.rotation`` of an Auth0ClientSecret, typed."""

    id: str
    """Rotation id: unique per rotation, never derived from the value."""
    phase: Phase
    trigger: str
    strategy: str
    started_at: datetime
    renewed_at: datetime
    holder: str
    """Identity of the process running it; others take over only when it is stale."""
    client_id: str | None = None
    """The client the rotation was started for (it finishes for that one)."""
    tenant: str | None = None
    """``kind/name`` of the tenant the rotation was started with."""
    rerotated: bool = False
    """rotate-secret was sent once more to learn the value after an unknown outcome."""
    recovery: str | None = None
    """How an unknown Auth0 outcome was resolved, for the closing message."""
    delivered: tuple[str, ...] = field(default=())
    """``auth0Targets`` already written with this rotation's value."""
    retry_at: datetime | None = None
    """Auth0 refused the rotation; it is tried again at this time."""
    credential_id: str | None = None
    """``KeyPair``: the id of the credential this rotation registered."""
    credential_kid: str | None = None
    """``KeyPair``: its ``kid``."""
    retiring: tuple[str, ...] = field(default=())
    """``KeyPair``: credentials of ours (or adopted) to detach and delete after the rollout."""

    @classmethod
    def start(
        cls,
        *,
        trigger: str,
        strategy: str,
        client_id: str,
        tenant: str,
        holder: str,
        now: datetime,
    ) -> RotationJournal:
        """A new journal in phase ``Claimed`` with a fresh rotation id."""
        return cls(
            id=f"{now.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(4)}",
            phase=Phase.CLAIMED,
            trigger=trigger,
            strategy=strategy,
            started_at=now,
            renewed_at=now,
            holder=holder,
            client_id=client_id,
            tenant=tenant,
        )

    @classmethod
    def from_status(cls, raw: dict[str, Any], *, default_strategy: str) -> RotationJournal:
        """Parse ``status.rotation`` (as written by this or any earlier release)."""
        started = parse_time(raw.get("startedAt"))
        renewed = parse_time(raw.get("renewedAt")) or started
        if started is None or renewed is None:
            started = renewed = datetime.fromtimestamp(0).astimezone()
        return cls(
            id=str(raw.get("id") or ""),
            phase=Phase(raw.get("phase") or Phase.CLAIMED),
            trigger=str(raw.get("trigger") or ""),
            strategy=str(raw.get("strategy") or default_strategy),
            started_at=started,
            renewed_at=renewed,
            holder=str(raw.get("holder") or ""),
            client_id=raw.get("clientId") or None,
            tenant=raw.get("tenant") or None,
            rerotated=bool(raw.get("rerotated", False)),
            recovery=raw.get("recovery") or None,
            delivered=tuple(raw.get("delivered") or ()),
            retry_at=parse_time(raw.get("retryAt")),
            credential_id=raw.get("credentialId") or None,
            credential_kid=raw.get("credentialKid") or None,
            retiring=tuple(raw.get("retiring") or ()),
        )

    def as_status(self) -> dict[str, Any]:
        """The ``status.rotation`` merge patch: every field, ``None`` for the ones cleared."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = format_time(value)
            elif isinstance(value, tuple):
                value = list(value) or None
            elif isinstance(value, Phase):
                value = value.value
            elif value is False:
                value = None
            out[_KEYS[f.name]] = value
        return out

    def at(self, phase: Phase, now: datetime, **changes: Any) -> RotationJournal:
        """The journal moved to ``phase`` (renewed now), with other ``changes``."""
        return replace(self, phase=phase, renewed_at=now, **changes)

    def taken_over(self, holder: str, now: datetime) -> RotationJournal:
        """The journal held by ``holder`` from now on."""
        return replace(self, holder=holder, renewed_at=now)

    def tenant_ref(self) -> tuple[str, str] | None:
        """``(kind, name)`` of the tenant the rotation started with, if recorded."""
        kind, _, name = (self.tenant or "").partition("/")
        return (kind, name) if self.client_id and name else None
