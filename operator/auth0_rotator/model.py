"""Typed models of the custom resources, parsed at the edge.

The API server already enforces the schema and CEL rules of ``crds/``; parsing
here adds what a schema cannot say (a cron expression that parses, a time
zone that exists) and turns raw dicts into frozen dataclasses, so the engine
works with plain values. Parse errors are :class:`SpecError`, naming the
field and what to do.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from auth0_rotator.schedule import CronSchedule, ScheduleError

__all__ = [
    "GROUP",
    "VERSION",
    "ClientSecretSpec",
    "KeyNames",
    "KeyPairSettings",
    "NamespaceAccess",
    "SpecError",
    "TenantRef",
    "TenantSpec",
    "parse_duration",
]

GROUP = "auth0rotator.dev"
VERSION = "v1alpha1"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class SpecError(ValueError):
    """A spec that the schema accepted but that cannot be used."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.message = message


def parse_duration(text: str, field_path: str = "duration") -> timedelta:
    """Parse a Go-style duration such as ``1h30m`` or ``90s``."""
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise SpecError(field_path, f"{text!r} is not a duration like 1h, 30m or 1h30m")
    return timedelta(seconds=total)


@dataclass(frozen=True)
class TenantRef:
    """Which tenant resource a client secret uses."""

    kind: str
    name: str
    namespace: str | None
    """Set for ``Auth0Tenant`` (the resource's namespace), ``None`` for the cluster kind."""

    @property
    def key(self) -> str:
        """Stable text form, ``kind/namespace/name``."""
        return f"{self.kind}/{self.namespace or ''}/{self.name}"


@dataclass(frozen=True)
class KeyNames:
    """Secret keys to write; an empty name disables that key."""

    client_secret: str = "client_secret"
    client_id: str = "client_id"
    domain: str = "domain"
    previous_client_secret: str = ""
    next_client_secret: str = "next_client_secret"
    """``announce``: the next secret, published before Auth0 switches to it."""
    private_key: str = "private_key"
    """``KeyPair``: the PEM PKCS#8 private key."""
    key_id: str = "key_id"
    """``KeyPair``: the ``kid`` of the key's Auth0 credential."""
    algorithm: str = "algorithm"
    """``KeyPair``: the signing algorithm (RS256, RS384 or PS256)."""

    def managed(self, strategy: str = "Generate", *, announce: bool = False) -> tuple[str, ...]:
        """Every key a resource with ``strategy`` (and ``announce``) writes."""
        keys = (*self.value_keys(strategy), self.client_id, self.domain)
        if strategy != "KeyPair":
            keys += (self.previous_client_secret,)
        if announce:
            keys += (self.next_client_secret,)
        return tuple(k for k in keys if k)

    def value_keys(self, strategy: str) -> tuple[str, ...]:
        """The keys that hold what a rotation changes (the rest is client id and domain)."""
        if strategy == "KeyPair":
            return tuple(k for k in (self.private_key, self.key_id, self.algorithm) if k)
        return (self.client_secret,)

    def hash_material(self, strategy: str) -> dict[str, str]:
        """The key names whose change rotates.

        Exactly the earlier releases' fields, plus ``KeyPair``'s own for
        ``KeyPair``: an upgrade never changes a stored spec hash (that would
        rotate every resource).
        """
        material = {
            "client_secret": self.client_secret,
            "client_id": self.client_id,
            "domain": self.domain,
            "previous_client_secret": self.previous_client_secret,
        }
        if strategy == "KeyPair":
            material.update(
                private_key=self.private_key, key_id=self.key_id, algorithm=self.algorithm
            )
        if self.next_client_secret != KeyNames.next_client_secret:
            # Only a renamed next key counts: turning announce on or off never rotates.
            material["next_client_secret"] = self.next_client_secret
        return material


@dataclass(frozen=True)
class KeyPairSettings:
    """``spec.keyPair``: the key a ``KeyPair`` rotation generates, and what it may retire."""

    algorithm: str = "RS256"
    size: int = 2048
    adopt_credential_ids: tuple[str, ...] = ()
    """Credentials the operator did not create that it may retire like its own."""
    retire_after: timedelta = timedelta(0)
    """How long after the rollout (or the Secret write, without restart targets) the old
    key stays enabled, for consumers that read the Secret without being restarted."""

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> KeyPairSettings:
        """Parse ``spec.keyPair`` (admission checks the enums; stored objects may predate it)."""
        algorithm = raw.get("algorithm") or "RS256"
        if algorithm not in ("RS256", "RS384", "PS256"):
            raise SpecError("spec.keyPair.algorithm", "must be RS256, RS384 or PS256")
        size = int(raw.get("size") or 2048)
        if size not in (2048, 3072, 4096):
            raise SpecError("spec.keyPair.size", "must be 2048, 3072 or 4096")
        return cls(
            algorithm=algorithm,
            size=size,
            adopt_credential_ids=tuple(str(i) for i in raw.get("adoptCredentialIds") or ()),
            retire_after=parse_duration(raw.get("retireAfter") or "0s", "spec.keyPair.retireAfter"),
        )


@dataclass(frozen=True)
class ClientSecretSpec:
    """``Auth0ClientSecret.spec``, parsed."""

    namespace: str
    name: str
    tenant: TenantRef
    client_id: str
    secret_name: str
    keys: KeyNames
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    strategy: str = "Generate"
    schedule: CronSchedule | None = None
    min_interval: timedelta = timedelta(hours=1)
    initialization: str = "Fetch"
    verify: bool = True
    restart_targets: tuple[dict[str, Any], ...] = ()
    auth0_targets: tuple[dict[str, Any], ...] = ()
    suspend: bool = False
    deletion_policy: str = "Retain"
    key_pair: KeyPairSettings = field(default_factory=KeyPairSettings)
    announce: bool = False
    """``Generate`` only: publish the next secret to consumers before Auth0 switches."""

    @property
    def rotation_strategy(self) -> str:
        """The strategy module a new rotation runs: ``Announce`` for announced ``Generate``."""
        return "Announce" if self.announce and self.strategy == "Generate" else self.strategy

    @property
    def client_ref(self) -> str:
        """Which tenant and client the Secret's value belongs to."""
        return f"{self.tenant.key}/{self.client_id}"

    def target_client_ids(self) -> tuple[str, ...]:
        """Client ids whose ``client_metadata`` ``auth0Targets`` write."""
        return tuple(
            str(t["clientMetadata"].get("clientId"))
            for t in self.auth0_targets
            if isinstance(t.get("clientMetadata"), dict)
        )

    def target_action_ids(self) -> tuple[str, ...]:
        """Action ids ``auth0Targets`` set a secret of (and deploy)."""
        return tuple(
            str(t["actionSecret"].get("actionId"))
            for t in self.auth0_targets
            if isinstance(t.get("actionSecret"), dict)
        )

    def target_rules_config_keys(self) -> tuple[str, ...]:
        """Rules-config keys ``auth0Targets`` write."""
        return tuple(
            str(t["rulesConfig"].get("key"))
            for t in self.auth0_targets
            if isinstance(t.get("rulesConfig"), dict)
        )

    @property
    def spec_hash(self) -> str:
        """Fingerprint of the fields whose change triggers a rotation (SPEC §2)."""
        parts: list[Any] = [self.strategy, self.secret_name, self.keys.hash_material(self.strategy)]
        if self.strategy == "KeyPair":
            parts.append([self.key_pair.algorithm, self.key_pair.size])
        material = json.dumps(parts, sort_keys=True).encode()
        return hashlib.sha256(material).hexdigest()[:16]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ClientSecretSpec:
        """Parse a whole ``Auth0ClientSecret`` object; raise :class:`SpecError`."""
        meta = body.get("metadata", {})
        spec = body.get("spec") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        client_id = spec.get("clientId")
        if not isinstance(client_id, str) or not client_id:
            raise SpecError("spec.clientId", "is required: the Auth0 application's client id")
        ref = spec.get("tenantRef") or {}
        kind = ref.get("kind") or "Auth0Tenant"
        if kind not in ("Auth0Tenant", "ClusterAuth0Tenant"):
            raise SpecError("spec.tenantRef.kind", "must be Auth0Tenant or ClusterAuth0Tenant")
        tenant = TenantRef(
            kind=kind,
            name=ref.get("name") or "default",
            namespace=namespace if kind == "Auth0Tenant" else None,
        )
        raw_keys = spec.get("keys") or {}
        keys = KeyNames(
            client_secret=raw_keys.get("clientSecret", "client_secret") or "client_secret",
            client_id=raw_keys.get("clientId", "client_id"),
            domain=raw_keys.get("domain", "domain"),
            previous_client_secret=raw_keys.get("previousClientSecret", ""),
            next_client_secret=raw_keys.get("nextClientSecret", "next_client_secret"),
            private_key=raw_keys.get("privateKey", "private_key"),
            key_id=raw_keys.get("keyId", "key_id"),
            algorithm=raw_keys.get("algorithm", "algorithm"),
        )
        strategy = spec.get("strategy") or "Generate"
        announce = spec.get("announce") is True
        if announce and strategy != "Generate":
            raise SpecError(
                "spec.announce",
                f"only works with strategy Generate (the operator must choose the next value "
                f"before Auth0 switches to it; with {strategy} it cannot)",
            )
        if announce and not keys.next_client_secret:
            raise SpecError("spec.keys.nextClientSecret", "cannot be empty with announce")
        managed = keys.managed(strategy, announce=announce)
        if len(set(managed)) != len(managed):
            raise SpecError("spec.keys", "key names must be distinct")
        if strategy == "KeyPair" and not keys.private_key:
            raise SpecError("spec.keys.privateKey", "cannot be empty with strategy KeyPair")
        if strategy == "KeyPair" and spec.get("auth0Targets"):
            raise SpecError(
                "spec.auth0Targets",
                "cannot be used with strategy KeyPair: Auth0-side code receives client "
                "secrets, not private keys",
            )
        key_pair = KeyPairSettings.parse(spec.get("keyPair") or {})
        schedule = None
        if spec.get("schedule"):
            tz_name = spec.get("timeZone") or "UTC"
            try:
                tz = ZoneInfo(tz_name)
            except (ZoneInfoNotFoundError, ValueError):
                raise SpecError(
                    "spec.timeZone",
                    f"unknown time zone {tz_name!r}; use an IANA name like Europe/Paris",
                ) from None
            try:
                schedule = CronSchedule(spec["schedule"], tz)
            except ScheduleError as exc:
                raise SpecError("spec.schedule", str(exc)) from None
        template = spec.get("secretTemplate") or {}
        return cls(
            namespace=namespace,
            name=name,
            tenant=tenant,
            client_id=client_id,
            secret_name=spec.get("secretName") or name,
            keys=keys,
            labels=dict(template.get("labels") or {}),
            annotations=dict(template.get("annotations") or {}),
            strategy=strategy,
            schedule=schedule,
            min_interval=parse_duration(spec.get("minInterval") or "1h", "spec.minInterval"),
            initialization=spec.get("initialization") or "Fetch",
            verify=spec.get("verify", True) is not False,
            restart_targets=tuple(spec.get("restartTargets") or ()),
            auth0_targets=tuple(spec.get("auth0Targets") or ()),
            suspend=bool(spec.get("suspend", False)),
            deletion_policy=spec.get("deletionPolicy") or "Retain",
            key_pair=key_pair,
            announce=announce,
        )


def _optional_list(value: Any) -> tuple[str, ...] | None:
    return tuple(str(v) for v in value) if isinstance(value, list) else None


@dataclass(frozen=True)
class NamespaceAccess:
    """One ``ClusterAuth0Tenant.spec.namespaceAccess`` entry: what some namespaces may use."""

    names: tuple[str, ...] = ()
    selector: dict[str, Any] | None = None
    client_ids: tuple[str, ...] = ()
    action_ids: tuple[str, ...] = ()
    rules_config_keys: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entry: dict[str, Any]) -> NamespaceAccess:
        """Parse one entry (missing lists are empty: nothing of that kind)."""
        return cls(
            names=tuple(entry.get("names") or ()),
            selector=entry.get("namespaceSelector"),
            client_ids=tuple(entry.get("clientIds") or ()),
            action_ids=tuple(entry.get("actionIds") or ()),
            rules_config_keys=tuple(entry.get("rulesConfigKeys") or ()),
        )


@dataclass(frozen=True)
class TenantSpec:
    """``Auth0Tenant.spec`` / ``ClusterAuth0Tenant.spec``, parsed.

    ``None`` for an allow-list means the field is unset; what unset allows
    depends on the kind (see :mod:`auth0_rotator.access`).
    """

    ref: TenantRef
    domain: str
    audience: str | None
    secret_namespace: str
    secret_name: str
    client_id_key: str
    client_secret_key: str
    ca_bundle: str | None
    allowed_client_ids: tuple[str, ...] | None
    allowed_namespace_names: tuple[str, ...] | None
    allowed_namespace_selector: dict[str, Any] | None
    requests_per_second: float
    burst: int
    generation: int = 0
    """``metadata.generation``: changes with the spec, not with status writes."""
    all_namespaces: bool = False
    """``allowedNamespaces.all``: every namespace may use this cluster tenant."""
    allowed_action_ids: tuple[str, ...] | None = None
    allowed_rules_config_keys: tuple[str, ...] | None = None
    namespace_access: tuple[NamespaceAccess, ...] | None = None
    min_forced_interval: timedelta = timedelta(0)
    """Forced rotations of one resource never happen closer together than this."""
    private_key_key: str = "private_key"
    """Key of a PEM private key: if present, the tenant authenticates with Private Key JWT."""
    key_id_key: str = "key_id"
    algorithm_key: str = "algorithm"

    @property
    def cluster_scoped(self) -> bool:
        """Whether this is a ClusterAuth0Tenant (shared by namespaces)."""
        return self.ref.namespace is None

    @classmethod
    def parse(cls, ref: TenantRef, body: dict[str, Any]) -> TenantSpec:
        """Parse a tenant object found for ``ref``."""
        spec = body.get("spec") or {}
        secret_ref = (spec.get("credentials") or {}).get("secretRef") or {}
        if not secret_ref.get("name"):
            raise SpecError("spec.credentials.secretRef.name", "is required")
        secret_namespace = ref.namespace or secret_ref.get("namespace") or ""
        if not secret_namespace:
            raise SpecError(
                "spec.credentials.secretRef.namespace", "is required for a ClusterAuth0Tenant"
            )
        cluster = ref.kind == "ClusterAuth0Tenant"
        allowed_ns = (spec.get("allowedNamespaces") or None) if cluster else None
        rate = spec.get("rateLimit") or {}
        requests_per_second = float(rate.get("requestsPerSecond", 2))
        burst = int(rate.get("burst", 10))
        if requests_per_second < 0.1 or burst < 1:
            # Admission refuses these now; objects stored before that still reach here.
            raise SpecError(
                "spec.rateLimit", "requestsPerSecond must be at least 0.1 and burst at least 1"
            )
        access = spec.get("namespaceAccess") if cluster else None
        return cls(
            ref=ref,
            domain=spec["domain"],
            audience=spec.get("audience"),
            secret_namespace=secret_namespace,
            secret_name=secret_ref["name"],
            client_id_key=secret_ref.get("clientIdKey") or "client_id",
            client_secret_key=secret_ref.get("clientSecretKey") or "client_secret",
            ca_bundle=spec.get("caBundle"),
            allowed_client_ids=_optional_list(spec.get("allowedClientIds")),
            allowed_namespace_names=(
                tuple(allowed_ns.get("names") or ()) if allowed_ns is not None else None
            ),
            allowed_namespace_selector=(
                allowed_ns.get("namespaceSelector") if allowed_ns is not None else None
            ),
            requests_per_second=requests_per_second,
            burst=burst,
            generation=int(body.get("metadata", {}).get("generation") or 0),
            all_namespaces=bool((allowed_ns or {}).get("all", False)),
            allowed_action_ids=_optional_list(spec.get("allowedActionIds")),
            allowed_rules_config_keys=_optional_list(spec.get("allowedRulesConfigKeys")),
            namespace_access=(
                tuple(NamespaceAccess.parse(e) for e in access if isinstance(e, dict))
                if isinstance(access, list)
                else None
            ),
            min_forced_interval=parse_duration(
                spec.get("minForcedRotationInterval") or "0s", "spec.minForcedRotationInterval"
            ),
            private_key_key=secret_ref.get("privateKeyKey") or "private_key",
            key_id_key=secret_ref.get("keyIdKey") or "key_id",
            algorithm_key=secret_ref.get("algorithmKey") or "algorithm",
        )
