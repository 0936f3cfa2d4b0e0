"""The kind suite: marked ``e2e`` and skipped, with the precise reason, without Docker."""

from __future__ import annotations

import pytest

from tests.e2e.environment import skip_reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test here ``e2e``; skip them all, saying why, if Docker/helm are missing."""
    ours = [item for item in items if "e2e" in item.path.parts]
    if not ours:
        return
    reason = skip_reason()
    for item in ours:
        item.add_marker(pytest.mark.e2e)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"kind e2e: {reason}"))
