"""Our own writes, as the watch will show them: echoes need no reconcile.

Every object this process writes knowing all of it (a status write whose
answer is exactly what it merged in, a resourceVersion-checked Secret write, a
deletion) is noted here; when the watch event for that version arrives, it is
recognised once and skipped.
"""

from __future__ import annotations

__all__ = ["DELETED", "Echoes"]

_ECHOES_KEPT = 8
"""Own writes remembered per object whose watch events have not been seen (kopf may
merge events, so some never are)."""

DELETED = "<deleted>"
"""What :meth:`Echoes.expect_echo` records for an object this process deleted."""


class Echoes:
    """Recent own writes per object (kind, namespace, name)."""

    def __init__(self) -> None:
        self._echoes: dict[tuple[str, str, str], list[str]] = {}

    def expect_echo(self, kind: str, namespace: str, name: str, resource_version: str) -> None:
        """Note that this process wrote ``resource_version`` of an object, knowing all of it.

        The watch event for that version then needs no reconcile: the writer
        already acted on everything it shows.
        """
        versions = self._echoes.setdefault((kind, namespace, name), [])
        versions.append(resource_version)
        del versions[:-_ECHOES_KEPT]

    def is_echo(self, kind: str, namespace: str, name: str, resource_version: str | None) -> bool:
        """Whether a watch event shows exactly one of this process's recent writes of an object.

        Each expected version answers ``True`` once; any other version (someone
        else's change, or our write overtaken by one) answers ``False``.
        """
        key = (kind, namespace, name)
        versions = self._echoes.get(key)
        if resource_version is None or not versions or resource_version not in versions:
            return False
        versions.remove(resource_version)
        if not versions:
            del self._echoes[key]
        return True

    def is_deletion_echo(self, kind: str, namespace: str, name: str) -> bool:
        """Whether a DELETED event is for an object this process just deleted itself."""
        return DELETED in self._echoes.pop((kind, namespace, name), [])
