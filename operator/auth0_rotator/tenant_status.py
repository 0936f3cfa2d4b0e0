"""What a tenant's status says, and which resources to look at again when it changes.

A tenant's ``Ready`` condition is proven by a real token request with its
credentials (after every access check: domain allow-list, credentials opt-in),
and skipped when the status already proves the same credentials with a token
that has not expired (so restarting the operator costs no Auth0 request per
tenant). The resources using a tenant are reconciled again when its spec or its
readiness changes, never on other status writes (such as our own
``tokenExpiresAt``).

Nothing raised on this path reaches the log with its text: Kubernetes API
errors carry response headers and bodies, so only their type and status are
logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from auth0_rotator.auth0 import Auth0Error
from auth0_rotator.conditions import find, set_condition
from auth0_rotator.kube import KubeStore
from auth0_rotator.model import SpecError, TenantRef, TenantSpec
from auth0_rotator.schedule import Clock, format_time, parse_time
from auth0_rotator.tenants import TenantProblem, TenantRegistry

__all__ = ["TenantStatus", "still_ready"]

log = logging.getLogger(__name__)

Key = tuple[str, str]

_TOKEN_MARGIN = timedelta(minutes=10)


def still_ready(body: dict[str, Any], credentials: str | None, now: datetime) -> bool:
    """Whether the tenant's status already proves these credentials (no token request needed).

    True when Ready is True for this generation, with this resourceVersion of the
    credentials Secret, and the token then obtained has not expired: an operator
    restart then costs no Auth0 request per tenant. Anything else is checked again.
    """
    status = body.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    expires = parse_time(status.get("tokenExpiresAt"))
    return (
        ready.get("status") == "True"
        and credentials is not None
        and status.get("credentialsVersion") == credentials
        and status.get("observedGeneration") == (body.get("metadata") or {}).get("generation")
        and expires is not None
        and expires > now + _TOKEN_MARGIN
    )


def _failure(exc: BaseException) -> str:
    """A log-safe description of an unexpected error: its type and HTTP status only."""
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}{f' HTTP {status}' if status else ''}"


class TenantStatus:
    """Reports tenants' readiness and reconciles their users when it matters."""

    def __init__(
        self,
        tenants: TenantRegistry,
        store: KubeStore,
        clock: Clock,
        enqueue: Callable[[Key], None],
    ) -> None:
        self.tenants = tenants
        self.store = store
        self.clock = clock
        self.enqueue = enqueue
        self.users: dict[str, set[Key]] = {}
        """Resources using each tenant (by tenant reference key)."""
        self.seen: dict[str, tuple[Any, Any]] = {}
        """Per tenant: (generation, Ready status) when its users were last reconciled for it."""

    def use(self, tenant_key: str, key: Key) -> None:
        """``key`` uses the tenant ``tenant_key`` (as its latest event said)."""
        self.users.setdefault(tenant_key, set()).add(key)

    def drop(self, tenant_key: str, key: Key) -> None:
        """``key`` is gone."""
        self.users.get(tenant_key, set()).discard(key)

    async def on_event(self, ref: TenantRef, event_type: str, body: dict[str, Any]) -> None:
        """A tenant watch event: remember it, reconcile its users if needed, report it."""
        if event_type != "DELETED":
            # Before its users are queued: they resolve the tenant from this body.
            self.tenants.observe(ref, body)
        conditions = (body.get("status") or {}).get("conditions") or []
        seen = (
            (body.get("metadata") or {}).get("generation"),
            next((c.get("status") for c in conditions if c.get("type") == "Ready"), None),
        )
        if event_type != "MODIFIED" or self.seen.get(ref.key) != seen:
            for key in sorted(self.users.get(ref.key, set())):
                self.enqueue(key)
        self.seen[ref.key] = seen
        if event_type == "DELETED":
            self.seen.pop(ref.key, None)
            await self.tenants.forget(ref)
            return
        try:
            await self.report(ref, body)
        except Exception as exc:  # never the raw text: API errors carry headers and bodies
            log.warning("could not report the status of %s (%s)", ref.key, _failure(exc))

    async def report(self, ref: TenantRef, body: dict[str, Any]) -> None:
        """Set the tenant's Ready condition from a real token request (when it changes)."""
        status, reason, message = "True", "TokenObtained", "a management token was obtained"
        expires: str | None = None
        credentials: str | None = None
        try:
            tenant = TenantSpec.parse(ref, body)
            async with self.tenants.connect(tenant) as (auth0, credentials):
                if still_ready(body, credentials, self.clock()):
                    log.info("%s is Ready with these credentials; no token requested", ref.key)
                    return
                expires_at = await auth0.check_credentials()
            if expires_at is not None:
                remaining = expires_at - time.monotonic()
                expires = format_time(self.clock() + timedelta(seconds=remaining))
        except TenantProblem as exc:
            status, reason, message = "False", exc.reason, exc.message
        except (SpecError, KeyError) as exc:
            status, reason, message = "False", "InvalidTenant", str(exc)
        except Auth0Error as exc:
            status, reason, message = "False", exc.reason, exc.message
        await self._write(ref, body, (status, reason, message), expires, credentials)

    async def _write(
        self,
        ref: TenantRef,
        body: dict[str, Any],
        ready: tuple[str, str, str],
        expires: str | None,
        credentials: str | None,
    ) -> None:
        status = ready[0]
        recorded = body.get("status") or {}
        old = find(recorded.get("conditions"), "Ready")
        # Only a fresh token proves these credentials: record what it proved.
        fresh = status == "True" and (
            expires != recorded.get("tokenExpiresAt")
            or credentials != recorded.get("credentialsVersion")
        )
        if not fresh and (old.get("status"), old.get("reason"), old.get("message")) == ready:
            return
        conditions = set_condition([old] if old else [], ("Ready", *ready), self.clock())
        await self.store.patch_tenant_status(
            ref,
            {
                "observedGeneration": (body.get("metadata") or {}).get("generation"),
                "conditions": conditions,
                "tokenExpiresAt": expires,
                "credentialsVersion": credentials if status == "True" else None,
            },
        )
