"""Namespace selectors of ClusterAuth0Tenant.allowedNamespaces."""

from __future__ import annotations

import pytest

from auth0_rotator.labels import selector_matches

LABELS = {"team": "payments", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({}, True),
        ({"matchLabels": {"team": "payments"}}, True),
        ({"matchLabels": {"team": "orders"}}, False),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}, True),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, True),
        (
            {
                "matchLabels": {"team": "payments"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}],
            },
            False,
        ),
    ],
)
def test_label_selector_semantics(selector: dict[str, object], expected: bool) -> None:
    assert selector_matches(selector, LABELS) is expected
