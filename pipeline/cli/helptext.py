"""Help text shared by the command-line tools: defaults shown once, and only where they say something."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from avzsl.pipeline.core.version import add_version_option

__all__ = ["HelpFormatter", "add_version_option", "layout_subcommands"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` appended to an option's help, except when it would only repeat or mislead.

    Left out when the help already states its default (``default: bundled GloVe``), when the default is ``None``,
    ``False`` or an empty list (an unset option, a flag or a repeatable option: "(default: None)" or
    "(default: [])" says nothing) and for required options. A non-empty list default is shown as the
    comma-separated text the option takes (``(default: 42)``, not ``(default: [42])``).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" in text
            or "default:" in text
            or action.required
            or action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
            or (isinstance(action.default, (list, tuple)) and not action.default)
        ):
            return text
        if isinstance(action.default, (list, tuple)):
            # %% escapes: argparse %-formats the help text afterwards.
            shown = ",".join(str(v) for v in action.default).replace("%", "%%")
            return f"{text} (default: {shown})"
        return super()._get_help_string(action)


def layout_subcommands(
    prog: str,
    description: str,
    layouts: Mapping[str, Any],
    add_layout: Callable[[argparse._SubParsersAction, str, Any], None],
) -> argparse.ArgumentParser:
    """A parser with one required subcommand per feature layout (``avzsl-import`` / ``avzsl-export``), each added by
    ``add_layout(subparsers, name, layout)``, and ``--version``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for name, layout in layouts.items():
        add_layout(sub, name, layout)
    add_version_option(parser)
    return parser
