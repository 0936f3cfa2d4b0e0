"""Specs are parsed into typed values; what the schema cannot check is refused clearly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from auth0_rotator.model import ClientSecretSpec, SpecError, parse_duration
from auth0_rotator.schedule import CronSchedule, ScheduleError


def _parse(**spec: Any) -> ClientSecretSpec:
    return ClientSecretSpec.parse(
        {"metadata": {"namespace": "ns", "name": "app"}, "spec": {"clientId": "cid", **spec}}
    )


def test_defaults_follow_the_spec() -> None:
    spec = _parse()
    assert spec.secret_name == "app"
    assert spec.tenant.key == "Auth0Tenant/ns/default"
    assert spec.keys.managed() == ("client_secret", "client_id", "domain")
    assert (spec.strategy, spec.initialization, spec.verify) == ("Generate", "Fetch", True)
    assert spec.min_interval == timedelta(hours=1)


def test_cluster_tenant_has_no_namespace() -> None:
    spec = _parse(tenantRef={"kind": "ClusterAuth0Tenant", "name": "shared"})
    assert spec.tenant.namespace is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("250ms", 0.25)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "1d", "h", "1h 30m", "-1h"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(SpecError, match=r"spec\.minInterval"):
        parse_duration(text, "spec.minInterval")


def test_unknown_time_zone_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"spec.timeZone: unknown time zone 'Mars/Olympus'"):
        _parse(schedule="0 3 * * *", timeZone="Mars/Olympus")


def test_bad_cron_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"spec\.schedule"):
        _parse(schedule="61 * * * *")


def test_spec_hashes_are_the_ones_earlier_releases_stored() -> None:
    # Pinned: a changed hash after an upgrade would rotate every resource at once.
    def spec_hash(**spec: Any) -> str:
        return ClientSecretSpec.parse(
            {"metadata": {"namespace": "ns", "name": "app"}, "spec": {"clientId": "c", **spec}}
        ).spec_hash

    assert spec_hash() == "f09db6d213da3879"
    assert spec_hash(strategy="Rotate") == "e2258dd3aa7da67b"
    assert spec_hash(keys={"previousClientSecret": "prev", "clientId": ""}) == "7325be978b963307"


def test_key_pair_settings_and_keys() -> None:
    spec = _parse(strategy="KeyPair", keyPair={"algorithm": "PS256", "size": 3072})
    assert spec.keys.managed("KeyPair") == (
        "private_key",
        "key_id",
        "algorithm",
        "client_id",
        "domain",
    )
    assert (spec.key_pair.algorithm, spec.key_pair.size) == ("PS256", 3072)
    bigger = _parse(strategy="KeyPair", keyPair={"algorithm": "PS256", "size": 4096})
    assert bigger.spec_hash != spec.spec_hash  # a new key size rotates
    with pytest.raises(SpecError, match=r"spec\.auth0Targets"):
        _parse(strategy="KeyPair", auth0Targets=[{"rulesConfig": {"key": "K"}}])
    with pytest.raises(SpecError, match=r"spec\.keyPair\.size"):
        _parse(strategy="KeyPair", keyPair={"size": 1024})


def test_spec_hash_changes_only_with_rotation_relevant_fields() -> None:
    base = _parse()
    assert _parse(restartTargets=[{"kind": "Deployment", "name": "x"}]).spec_hash == base.spec_hash
    assert _parse(secretName="other").spec_hash != base.spec_hash
    assert _parse(strategy="Rotate").spec_hash != base.spec_hash


def test_cron_in_a_time_zone_handles_daylight_saving() -> None:
    paris = CronSchedule("0 3 * * *", ZoneInfo("Europe/Paris"))
    # 2026-03-29: clocks go 02:00 -> 03:00 in Paris; 03:00 CEST is 01:00 UTC.
    assert paris.next_fire_time(datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    assert paris.next_fire_time(datetime(2026, 1, 10, 12, tzinfo=UTC)) == datetime(
        2026, 1, 11, 2, 0, tzinfo=UTC
    )


def test_cron_needs_five_fields() -> None:
    with pytest.raises(ScheduleError, match="5"):
        CronSchedule("0 3 * *", ZoneInfo("UTC"))


def test_a_stored_tenant_with_a_zero_rate_is_refused_not_crashing() -> None:
    from auth0_rotator.model import SpecError, TenantRef, TenantSpec

    body = {
        "metadata": {"name": "t", "namespace": "ns", "generation": 1},
        "spec": {
            "domain": "acme.eu.auth0.com",
            "credentials": {"secretRef": {"name": "creds"}},
            "rateLimit": {"requestsPerSecond": 0, "burst": 10},
        },
    }
    with pytest.raises(SpecError, match=r"requestsPerSecond must be at least 0\.1"):
        TenantSpec.parse(TenantRef("Auth0Tenant", "t", "ns"), body)
