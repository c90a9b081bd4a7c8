"""The report as a document model: a title and a list of blocks, rendered to Markdown and to self-contained HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from avzsl.pipeline.core.tables import html_table, markdown_table

_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;"
    "text-align:right}th{background:#eee}td:first-child{text-align:left}"
    "img{max-width:100%}.warn{background:#fff3cd;border:1px solid #e0b000;padding:8px}"
)


@dataclass
class Document:
    """A report as a list of blocks, rendered to Markdown and to self-contained HTML."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def warning(self, text: str) -> None:
        self.blocks.append(("warn", text))

    def image(self, name: str, alt: str) -> None:
        self.blocks.append(("img", (name, alt)))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (header, rows)))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "h2":
                out += [f"## {value}", ""]
            elif kind == "p":
                out += [value, ""]
            elif kind == "warn":
                out += [f"> **WARNING**: {value}", ""]
            elif kind == "img":
                out += [f"![{value[1]}]({value[0]})", ""]
            elif kind == "table":
                out += [*markdown_table(*value), ""]
        return "\n".join(out).rstrip("\n") + "\n"

    def html(self) -> str:
        esc = html.escape
        body = [f"<h1>{esc(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "h2":
                body.append(f"<h2>{esc(value)}</h2>")
            elif kind == "p":
                body.append(f"<p>{esc(value)}</p>")
            elif kind == "warn":
                body.append(f'<p class="warn"><b>WARNING</b>: {esc(value)}</p>')
            elif kind == "img":
                body.append(f'<p><img src="{esc(value[0])}" alt="{esc(value[1])}"></p>')
            elif kind == "table":
                body.append(html_table(*value))
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(self.title)}</title>'
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )
