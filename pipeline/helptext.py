"""Help text shared by the command-line tools: defaults shown once, and only where they say something."""

from __future__ import annotations

import argparse

from avzsl.pipeline.version import add_version_option

__all__ = ["HelpFormatter", "add_version_option"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` appended to an option's help, except when it would only repeat or mislead.

    Left out when the help already states its default (``default: bundled GloVe``), when the default is ``None``
    or ``False`` (an unset option or a flag: "(default: None)" says nothing) and for required options.
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
        ):
            return text
        return super()._get_help_string(action)
