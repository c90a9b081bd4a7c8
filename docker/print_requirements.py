"""Print the project's pip requirements, one per line, straight from ``pyproject.toml``.

The Dockerfile runs this before the source is copied, so the dependency layer is cached
independently of code changes while staying exactly what ``[project].dependencies`` declares
(no second, hand-maintained requirements list to drift).

Usage::

    python docker/print_requirements.py [--pyproject PATH] [EXTRA ...]

Each ``EXTRA`` (e.g. ``decord``) appends that ``[project.optional-dependencies]`` group;
an empty string is ignored so ``--build-arg EXTRAS=`` works unchanged. An unknown name is an
error (a typo must not silently install less), unless it ends with ``?`` (``app?``): such a
group is added when pyproject defines it and skipped otherwise, so the Dockerfile can name an
extra that a branch of the project does not have yet. Needs Python >= 3.11 (``tomllib``) and
nothing else.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

DEFAULT_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """Return the base dependencies followed by those of each requested extra, duplicates removed.

    Args:
        pyproject: path of the ``pyproject.toml`` to read.
        extras: names of ``[project.optional-dependencies]`` groups; blank names are skipped, and so is a name
            ending with ``?`` that pyproject does not define.

    Raises:
        KeyError: an extra without ``?`` that pyproject does not define (a typo must not silently install less).
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    result = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in (name.strip() for name in extras):
        if not extra:
            continue
        if extra.endswith("?"):
            extra = extra[:-1]
            if extra not in optional:
                continue
        if extra not in optional:
            raise KeyError(f"unknown extra {extra!r}; pyproject defines {sorted(optional)}")
        result.extend(req for req in optional[extra] if req not in result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=DEFAULT_PYPROJECT, help="pyproject.toml to read")
    parser.add_argument("extras", nargs="*", help="optional-dependency groups to add (comma or space separated)")
    args = parser.parse_args(argv)
    extras = [name for arg in args.extras for name in arg.split(",")]
    try:
        lines = requirements(args.pyproject, extras)
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
