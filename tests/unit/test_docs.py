"""The documentation stays true where a machine can check it.

Links resolve (files and section anchors), nothing points outside the
repository or at the project's private notes, every ``make`` target and
operator flag the docs name exists, and every chart value is documented.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from auth0_rotator.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "auth0-rotator"
DOCS = sorted(
    [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        REPO / "BENCHMARKS.md",
        REPO / "RELIABILITY.md",
        CHART / "README.md",
        REPO / "examples" / "README.md",
        *(REPO / "docs").glob("*.md"),
    ]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HELM_FLAGS = {"--set", "--set-json"}
"""Flags of other tools the docs show in backticks."""


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    return {_slug(h) for h in re.findall(r"(?m)^#{1,6} (.+)$", text)}


def _links(path: Path) -> Iterator[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())
    yield from LINK.findall(text)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_links_resolve_inside_the_repository(doc: Path) -> None:
    for target in _links(doc):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        resolved = (doc.parent / file).resolve() if file else doc
        assert resolved.is_relative_to(REPO), f"{doc.name}: {target} leaves the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{doc.name}: no section #{anchor} in {file}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_stand_on_their_own(doc: Path) -> None:
    text = doc.read_text()
    assert not re.search(r"\bSPEC\b", text), f"{doc.name} cites the SPEC"
    assert "../shared" not in text and "/work/" not in text


def test_every_make_target_the_docs_name_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"(?m)^([a-z][a-z0-9-]*):", makefile))
    # At a line's start, in backticks or after a prompt: a command, not prose ("make the").
    command = re.compile(r"(?m)(?:^|`|\$ |\(\")make (?:-s )?([a-z][a-z0-9-]*[a-z0-9])(?![\w*-])")
    named = {t for doc in DOCS for t in command.findall(doc.read_text())}
    assert named, "no make target found: the pattern is wrong"
    assert named <= targets, named - targets


def test_every_operator_flag_the_docs_name_exists() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    run = sub.choices["run"]
    flags = {o for action in run._actions for o in action.option_strings}
    for doc in DOCS:
        for flag in re.findall(r"`(--[a-z][a-z0-9-]*)", doc.read_text()):
            known = flag in flags or flag in HELM_FLAGS or any(f.startswith(flag) for f in flags)
            assert known, f"{doc.name} names {flag}, which auth0-rotator run does not have"


def _leaves(values: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def test_every_chart_value_is_in_the_chart_readme() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"(?m)^\| `([A-Za-z0-9_.<>]+)` \|", readme))
    assert "image.repository" in documented  # the table was found
    missing = []
    for leaf in _leaves(yaml.safe_load((CHART / "values.yaml").read_text())):
        parts = leaf.split(".")
        candidates = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
        if len(parts) >= 3 and parts[:2] == ["prometheusRule", "alerts"]:
            candidates.add("prometheusRule.alerts.<alert>")
        if not candidates & documented:
            missing.append(leaf)
    assert not missing, f"values not in the chart README's table: {missing}"
