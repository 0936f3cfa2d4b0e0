"""Ids in Management API paths: one segment each, never a dot segment."""

from __future__ import annotations

import httpx

from auth0_rotator.auth0._errors import InvalidRequest

__all__ = ["path_segment"]


def path_segment(identifier: str) -> str:
    """``identifier`` as one URL path segment; ``.``, ``..`` and empty ids are refused."""
    if identifier in ("", ".", ".."):
        raise InvalidRequest(f"{identifier!r} is not an Auth0 id: it would change the URL path")
    return httpx.URL(f"/{identifier}").raw_path.decode()[1:]
