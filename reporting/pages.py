"""The report's page blocks and their two renderings: Markdown (relative image links) and HTML
(self-contained, images embedded). Sections are lists of blocks, so both pages say the same."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    path: Path
    caption: str
    pdf: Path | None = None


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Text:
    text: str


@dataclass
class Missing:
    """What the report could not make, why, and the command that would make it."""

    what: str
    reason: str
    command: str


Block = Figure | Table | Text | Missing


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)  # for report.json, beyond the runs' numbers


def percent(value: float | None) -> str:
    """A fraction as the pages show it, "-" where there is none."""
    return "-" if value is None else f"{100 * value:.2f}%"


def loss(value: float) -> str:
    return f"{value:.4f}"


def to_markdown(title: str, sections: list[Section], out: Path) -> str:
    """The Markdown page; links are relative to out, so the folder can move as a whole."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += [*markdown_block(block, out), ""]
    return "\n".join(lines)


def markdown_block(block: Block, out: Path) -> list[str]:
    if isinstance(block, Figure):
        link = block.path.relative_to(out).as_posix()
        pdf = f" ([PDF]({block.pdf.relative_to(out).as_posix()}))" if block.pdf else ""
        return [f"![{block.path.stem}]({link})", "", f"*{block.caption}*{pdf}"]
    if isinstance(block, Table):
        rows = [block.header, ["---"] * len(block.header), *block.rows]
        return ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                for row in rows]
    if isinstance(block, Missing):
        return [f"**Missing: {block.what}** ({block.reason}). To make it: `{block.command}`"]
    return [block.text]


STYLE = ("body{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em;line-height:1.4}"
         "img{max-width:100%}table{border-collapse:collapse;margin:.5em 0}"
         "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left}"
         "figcaption{font-style:italic;margin-bottom:1.5em}.missing{color:#a00}"
         "code{background:#eee}")


def to_html(title: str, sections: list[Section]) -> str:
    """One HTML file with every image embedded, so it can be mailed or opened anywhere."""
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [html_block(block) for block in section.blocks]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def html_block(block: Block) -> str:
    if isinstance(block, Figure):
        data = base64.b64encode(block.path.read_bytes()).decode("ascii")
        return (f"<figure><img alt='{html.escape(block.path.stem)}' "
                f"src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in block.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
                       + "</tr>" for row in block.rows)
        return f"<table><tr>{head}</tr>{body}</table>"
    if isinstance(block, Missing):
        return (f"<p class='missing'><b>Missing: {html.escape(block.what)}</b> "
                f"({html.escape(block.reason)}). To make it: "
                f"<code>{html.escape(block.command)}</code></p>")
    return f"<p>{html.escape(block.text)}</p>"


def markdown_blocks(text: str) -> list[Block]:
    """A Markdown pipe table (and the lines around it) as page blocks, so that the HTML page
    shows a table too; headings are dropped (the section has its own)."""
    blocks: list[Block] = []
    table: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                table.append(cells)
            continue
        if table:
            blocks.append(Table(table[0], table[1:]))
            table = []
        if line.strip() and not line.startswith("#"):
            blocks.append(Text(line.strip()))
    return blocks
