"""kopf handlers: thin adapters between Kubernetes events and the engine.

Handlers are registered on a registry of our own (not kopf's global default),
so importing this module twice, or running several operators in one test
process, never mixes registrations.
"""

from __future__ import annotations

from typing import Any

import kopf

__all__ = ["PERSISTENCE_PREFIX", "registry"]

PERSISTENCE_PREFIX = "auth0rotator.dev"
"""Prefix of kopf's own bookkeeping annotations; fixed early, changing it needs a migration."""

registry = kopf.OperatorRegistry()


@kopf.on.startup(registry=registry)
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Set kopf's storage and posting settings for this operator."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=PERSISTENCE_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PERSISTENCE_PREFIX,
        key="last-handled-configuration",
    )
    settings.persistence.finalizer = f"{PERSISTENCE_PREFIX}/finalizer"
    # Events are posted by our own code with deduplication; kopf's per-log-line
    # events would flood the resource.
    settings.posting.enabled = False
