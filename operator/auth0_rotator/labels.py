"""Every ``auth0rotator.dev/*`` label and annotation key, and label-selector helpers.

Keys are public: users set some (the rotate annotation, the credentials
label), tools read others (the pod-template revision). They are defined here
and nowhere else.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CREDENTIALS_LABEL",
    "KEYS_ANNOTATION",
    "MANAGED_BY",
    "MANAGED_BY_SELECTOR",
    "OWNER_ANNOTATION",
    "OWNER_UID_ANNOTATION",
    "PREFIX",
    "REVISION_ANNOTATION",
    "ROLE_LABEL",
    "ROTATE_ANNOTATION",
    "ROTATION_ID_ANNOTATION",
    "SECRET_KEY_ANNOTATION",
    "selector_matches",
    "selector_string",
]

PREFIX = "auth0rotator.dev"
"""The API group, and the prefix of every key below (and of kopf's own bookkeeping)."""

ROTATE_ANNOTATION = f"{PREFIX}/rotate"
"""On an Auth0ClientSecret: each new value forces one rotation."""

REVISION_ANNOTATION = f"{PREFIX}/secret-revision"
"""On a restart target's pod template (and the target Secret): the rotation id(s) it runs."""

MANAGED_BY = {"app.kubernetes.io/managed-by": "auth0-rotator"}
"""Labels of every Secret the operator writes."""
MANAGED_BY_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())

OWNER_ANNOTATION = f"{PREFIX}/owner"
"""On a written Secret: ``namespace/name`` of the Auth0ClientSecret that owns it."""
OWNER_UID_ANNOTATION = f"{PREFIX}/owner-uid"
KEYS_ANNOTATION = f"{PREFIX}/keys"
"""On a written Secret: the data keys the operator wrote (others are left alone)."""
ROLE_LABEL = f"{PREFIX}/role"
"""On a written Secret: ``target`` or ``staging``."""
SECRET_KEY_ANNOTATION = f"{PREFIX}/client-secret-key"
"""On a target Secret: which key holds the client secret (to relocate it)."""
ROTATION_ID_ANNOTATION = f"{PREFIX}/rotation-id"
"""On a staging Secret: the rotation whose values it holds."""

CREDENTIALS_LABEL = (f"{PREFIX}/credentials", "true")
"""A Secret is used as tenant credentials only when it carries this label.

Only someone who may write that Secret can set it, so a tenant object cannot
make the operator read (and send to Auth0) a Secret its owner did not offer.
"""


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes LabelSelector matches ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def selector_string(selector: dict[str, Any]) -> str:
    """A LabelSelector as the API's ``labelSelector`` query string."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
