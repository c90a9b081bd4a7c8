"""The installed avzsl version and the ``--version`` option every command-line tool has (cheap to import)."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The version of the installed ``avzsl`` distribution (``unknown`` when run from a source tree not installed)."""
    try:
        return version("avzsl")
    except PackageNotFoundError:
        return "unknown"


def add_version_option(parser: argparse.ArgumentParser) -> None:
    """``--version``: print ``<prog> <version>`` and exit 0."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
