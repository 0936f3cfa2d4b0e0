"""In-memory stand-ins for the journal driver's tests: the Kubernetes adapter and Auth0.

The store keeps status merge patches with resourceVersion checks and owned
Secrets; the Auth0 fake keeps one client's secret, or its Private Key JWT
credentials, and counts calls. :class:`World` wires a driver to them.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from auth0_rotator.auth0 import (
    Auth0Client,
    AuthMethods,
    Credential,
    InvalidRequest,
    OutcomeUnknown,
)
from auth0_rotator.decisions import Decision
from auth0_rotator.fetching import TargetSecrets
from auth0_rotator.journal import Phase, RotationJournal
from auth0_rotator.keypairs import public_key_pem
from auth0_rotator.kube import Conflict, KubeStore, OwnerInfo, SecretConflict
from auth0_rotator.labels import MANAGED_BY, OWNER_ANNOTATION, OWNER_UID_ANNOTATION, ROLE_LABEL
from auth0_rotator.model import ClientSecretSpec, TenantRef, TenantSpec
from auth0_rotator.reporting import Reporter, _merged
from auth0_rotator.restarting import Restarter
from auth0_rotator.rotation import STRATEGIES
from auth0_rotator.rotation.driver import JournalDriver
from auth0_rotator.secretvalue import SecretValue
from auth0_rotator.settings import EngineSettings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OWNER = OwnerInfo("ns", "app", "uid-1")
OLD, NEW = "o" * 64, "n" * 64


class FakeStore:
    """Status patches and owned Secrets in memory, as the API server would keep them."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.secrets: dict[str, dict[str, Any]] = {}
        self.versions = itertools.count(100)
        self.conflict_next_claim = False
        self.events: list[str] = []
        self.deleted: list[str] = []

    # status -----------------------------------------------------------------------
    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        meta = self.obj["metadata"]
        if resource_version is not None and (
            self.conflict_next_claim or resource_version != meta["resourceVersion"]
        ):
            self.conflict_next_claim = False
            raise Conflict("changed")
        self.obj = {
            **self.obj,
            "metadata": {**meta, "resourceVersion": str(next(self.versions))},
            "status": _merged(self.obj.get("status") or {}, status),
        }
        return self.obj

    def expect_echo(self, *_: Any) -> None:
        pass

    async def get_client_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self.obj

    def someone_writes(self, status: dict[str, Any] | None = None) -> None:
        """Another writer changes the object (an annotation, or ``status``) meanwhile."""
        meta = {**self.obj["metadata"], "resourceVersion": str(next(self.versions))}
        merged = _merged(self.obj.get("status") or {}, status or {})
        self.obj = {**self.obj, "metadata": meta, "status": merged}

    async def post_event(self, obj: Any, kind: str, reason: str, message: str, now: Any) -> None:
        self.events.append(reason)

    @contextlib.contextmanager
    def holding_events(self) -> Iterator[None]:
        yield

    # Secrets ----------------------------------------------------------------------
    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get(name)

    async def write_owned_secret(
        self,
        owner: OwnerInfo,
        name: str,
        values: dict[str, Any],
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
        role: str = "target",
        create_only: bool = False,
        **_: Any,
    ) -> str:
        existing = self.secrets.get(name)
        if existing is not None and create_only:
            raise Conflict("exists")
        if existing is not None and not KubeStore.is_owned_by(existing, owner):
            raise SecretConflict(owner.namespace, name, None)
        data = dict((existing or {}).get("data") or {}) if role == "staging" else {}
        for key, value in values.items():
            raw = value.reveal() if isinstance(value, SecretValue) else value
            data[key] = base64.b64encode(raw.encode()).decode()
        version = str(next(self.versions))
        self.secrets[name] = {
            "metadata": {
                "resourceVersion": version,
                "labels": {**labels, **MANAGED_BY, ROLE_LABEL: role},
                "annotations": {
                    **annotations,
                    OWNER_ANNOTATION: owner.ref,
                    OWNER_UID_ANNOTATION: owner.uid,
                },
            },
            "data": data,
        }
        return version

    async def delete_owned_secret(self, owner: OwnerInfo, name: str, **_: Any) -> None:
        if self.secrets.pop(name, None) is not None:
            self.deleted.append(name)

    def value_of(self, name: str, key: str) -> str | None:
        raw = ((self.secrets.get(name) or {}).get("data") or {}).get(key)
        return None if raw is None else base64.b64decode(raw).decode()


class FakeAuth0:
    """Auth0 as far as the strategies use it: one client's secret, calls counted."""

    def __init__(self, secret: str = OLD) -> None:
        self.secret = secret
        self.changes = 0
        self.rotations = 0
        self.rotate_outcome: Exception | None = None
        self.rotate_commits = True
        self.readable = True
        self.accepts = True
        self.refused: Exception | None = None
        """Raised by every change while set (the management client refused, say)."""

    async def set_client_secret(self, client_id: str, value: SecretValue) -> None:
        if self.refused is not None:
            raise self.refused
        if value.reveal() != self.secret:
            self.secret, self.changes = value.reveal(), self.changes + 1

    async def rotate_client_secret(self, client_id: str) -> SecretValue:
        self.rotations += 1
        if self.rotate_commits:
            self.secret, self.changes = f"r{self.rotations}" * 32, self.changes + 1
        if self.rotate_outcome is not None:
            outcome, self.rotate_outcome = self.rotate_outcome, None
            raise outcome
        return SecretValue(self.secret)

    async def get_client_secret(self, client_id: str) -> SecretValue:
        if not self.readable:
            from auth0_rotator.auth0 import InsufficientScope

            raise InsufficientScope("no read:client_keys", scopes=("read:client_keys",))
        return SecretValue(self.secret)

    async def verify_client_secret(self, client_id: str, value: SecretValue, **_: Any) -> bool:
        return self.accepts and value.reveal() == self.secret


@dataclass
class FakeCredential:
    """A registered public key."""

    id: str
    name: str
    kid: str
    alg: str
    pem: str


class FakeKeyAuth0(FakeAuth0):
    """Auth0 with Private Key JWT: credentials, the enabled list (at most two), assertions."""

    def __init__(self, enabled: list[FakeCredential] | None = None) -> None:
        super().__init__()
        self.credentials: dict[str, FakeCredential] = {c.id: c for c in enabled or ()}
        self.enabled: list[str] | None = [c.id for c in enabled or ()]
        self.ids = itertools.count(1)
        self.registrations = 0
        self.lose_register_answer = False

    async def get_auth_methods(self, client_id: str) -> AuthMethods:
        method = None if self.enabled is not None else "client_secret_post"
        return AuthMethods(method, None if self.enabled is None else tuple(self.enabled))

    async def list_credentials(self, client_id: str) -> list[Credential]:
        return [Credential(c.id, c.name, c.kid, c.alg) for c in self.credentials.values()]

    async def register_credential(
        self, client_id: str, *, name: str, pem: str, alg: str
    ) -> Credential:
        n = next(self.ids)
        self.credentials[f"cred_{n}"] = FakeCredential(f"cred_{n}", name, f"kid-{n}", alg, pem)
        self.registrations += 1
        if self.lose_register_answer:
            self.lose_register_answer = False
            raise OutcomeUnknown("answer lost")
        return Credential(f"cred_{n}", name, f"kid-{n}", alg)

    async def set_enabled_credentials(self, client_id: str, ids: list[str]) -> None:
        if len(ids) > 2:
            raise InvalidRequest("Array is too long", status=400)
        self.enabled = list(ids)

    async def delete_credential(self, client_id: str, credential_id: str) -> bool:
        if credential_id in (self.enabled or ()):
            raise InvalidRequest("enabled", status=400)
        return self.credentials.pop(credential_id, None) is not None

    async def verify_private_key(self, client_id: str, key: SecretValue, **_: Any) -> bool:
        pem = public_key_pem(key)
        return self.accepts and any(self.credentials[i].pem == pem for i in self.enabled or ())


def _resource(strategy: str, journal: RotationJournal | None = None, **spec: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"rotationCount": 0}
    if journal is not None:
        status["rotation"] = {k: v for k, v in journal.as_status().items() if v is not None}
    return {
        "metadata": {
            "namespace": "ns",
            "name": "app",
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"clientId": "app-client", "strategy": strategy, **spec},
        "status": status,
    }


class World:
    """A driver wired to the fakes, recording the crash points it passes."""

    def __init__(self, strategy: str, journal: RotationJournal | None = None, **spec: Any) -> None:
        self.store = FakeStore(_resource(strategy, journal, **spec))
        self.auth0 = FakeAuth0()
        self.points: list[str] = []
        self.settings = EngineSettings(identity="me", clock=lambda: NOW)
        reporter = Reporter(cast(KubeStore, self.store), self.settings)
        store = cast(KubeStore, self.store)
        self.driver = JournalDriver(
            store,
            reporter,
            TargetSecrets(store, cast(Any, None), reporter, self.settings),
            Restarter(store, reporter, self.settings),
            STRATEGIES,
            self.settings,
        )
        self.spec = ClientSecretSpec.parse(self.store.obj)
        self.tenant = TenantSpec.parse(
            TenantRef("Auth0Tenant", "default", "ns"),
            {"spec": {"domain": "acme.auth0.com", "credentials": {"secretRef": {"name": "c"}}}},
        )

    def phase(self) -> str | None:
        return ((self.store.obj.get("status") or {}).get("rotation") or {}).get("phase")

    async def start(self) -> None:
        await self.driver.start(
            self.store.obj,
            self.spec,
            Decision("rotate", trigger="annotation", consume={"lastRotateRequest": "x"}),
            OWNER,
            self.tenant,
            cast(Auth0Client, self.auth0),
            self.store.secrets.get("app"),
        )

    async def resume(self) -> None:
        async def connect(spec: ClientSecretSpec) -> tuple[TenantSpec, Auth0Client]:
            return self.tenant, cast(Auth0Client, self.auth0)

        await self.driver.resume(
            self.store.obj, self.spec, OWNER, self.store.secrets.get("app"), connect
        )


def journal_at(strategy: str, phase: Phase, holder: str = "me", **changes: Any) -> RotationJournal:
    journal = RotationJournal.start(
        trigger="annotation",
        strategy=strategy,
        client_id="app-client",
        tenant="Auth0Tenant/default",
        holder=holder,
        now=NOW - timedelta(minutes=1),
    )
    return journal.at(phase, NOW - timedelta(minutes=1), **changes)
