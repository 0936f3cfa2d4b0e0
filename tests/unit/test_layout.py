"""The package layout never shadows the standard library."""

from __future__ import annotations

from pathlib import Path

import auth0_rotator

REPO = Path(__file__).resolve().parents[2]


def test_stdlib_operator_module_is_not_shadowed() -> None:
    import operator

    assert operator.itemgetter(1)(["a", "b"]) == "b"
    assert Path(operator.__file__).parent != REPO / "operator"


def test_operator_folder_is_not_a_package() -> None:
    assert not (REPO / "operator" / "__init__.py").exists()


def test_package_is_imported_from_the_operator_folder() -> None:
    assert Path(auth0_rotator.__file__).resolve().parent == REPO / "operator" / "auth0_rotator"
