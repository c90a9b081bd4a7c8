"""Text tables: the one writer behind the Markdown, HTML and fixed-width tables of sweeps and reports.

Cells are given as text (the caller formats numbers); the functions only lay them out, so every table of the
same kind looks the same wherever it is written.
"""

from __future__ import annotations

import html
from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table as lines: ``| a | b |``, ``|---|---|``, then one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML ``<table>`` (``<thead>`` with the header, ``<tbody>`` with the rows) on one line, cells escaped."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def fixed_width_table(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]) -> list[str]:
    """A plain-text table as lines: the first column left-aligned, the others right-aligned, each padded to its
    width in ``widths`` (a longer cell is not cut)."""

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return f"{first:<{widths[0]}}" + "".join(f"{c:>{w}}" for c, w in zip(rest, widths[1:], strict=True))

    return [line(header), *(line(row) for row in rows)]
