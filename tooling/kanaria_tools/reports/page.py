"""One self-contained HTML page from Markdown sections and figures: Jinja2 lays it out, markdown-it-py renders the
Markdown (tables on, raw HTML off), every picture is embedded as a data URI, so the file opens from disk in any
browser without a server. The same sections give the Markdown report, with the pictures as files beside it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Sequence

from jinja2 import Environment, StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup


@dataclass(frozen=True)
class Picture:
    """A figure: the file it is written to beside the report, its SVG text, what it shows."""

    file: str
    svg: str
    alt: str
    caption: str = ""

    @property
    def data_uri(self) -> str:
        """The SVG as a base64 data URI (an <img> source that needs no file)."""
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class Tile:
    """One cell of a compact grid: a title, a status (its colour class) and one or two short lines."""

    title: str
    status: str  # ok | warn | bad | idle
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A part of the report: Markdown text, then a grid of tiles, then pictures."""

    markdown: str
    pictures: tuple[Picture, ...] = ()
    tiles: tuple[Tile, ...] = ()
    tiles_caption: str = ""


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
.verdict { font-weight: bold; padding: 0.4em 0.8em; display: inline-block; border-radius: 4px; color: white; }
.verdict.ok { background: #2f7d4f; } .verdict.bad { background: #b83232; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 6px; margin: 0.8em 0; }
.tile { border-radius: 4px; padding: 0.35em 0.5em; font-size: 0.8em; border: 1px solid #ccc; }
.tile b { display: block; }
.tile.ok { background: #e3f1e8; } .tile.warn { background: #fbefd5; }
.tile.bad { background: #f7d9d9; border-color: #b83232; } .tile.idle { background: #f2f2f2; color: #777; }
code { background: #f4f4f4; padding: 0 0.2em; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="verdict {{ 'ok' if ok else 'bad' }}">{{ verdict }}</p>
{% for section in sections %}
<section>
{{ section.html }}
{% if section.tiles %}
<div class="tiles" role="table" aria-label="{{ section.tiles_caption }}">
{% for tile in section.tiles %}
<div class="tile {{ tile.status }}" role="cell"><b>{{ tile.title }}</b>{% for line in tile.lines %}{{ line }}<br>{% endfor %}</div>
{% endfor %}
</div>
{% if section.tiles_caption %}<p><small>{{ section.tiles_caption }}</small></p>{% endif %}
{% endif %}
{% for picture in section.pictures %}
<figure><img src="{{ picture.data_uri }}" alt="{{ picture.alt }}">
{% if picture.caption %}<figcaption>{{ picture.caption }}</figcaption>{% endif %}</figure>
{% endfor %}
</section>
{% endfor %}
</body>
</html>
"""

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_ENVIRONMENT = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class _Rendered:
    html: Markup
    pictures: tuple[Picture, ...]
    tiles: tuple[Tile, ...]
    tiles_caption: str


def render_html(title: str, verdict: str, ok: bool, sections: Sequence[Section]) -> str:
    """The page: the title, the verdict (green only when every outcome was as expected) and the sections."""
    rendered = [_Rendered(Markup(_MARKDOWN.render(s.markdown)), s.pictures, s.tiles, s.tiles_caption) for s in sections]
    return _ENVIRONMENT.from_string(_TEMPLATE).render(title=title, verdict=verdict, ok=ok, sections=rendered)


def tile_table(tiles: Sequence[Tile]) -> list[str]:
    """The tiles as a Markdown list (the Markdown report's form of the grid)."""
    return [f"- **{t.title}** ({t.status}): {'; '.join(t.lines)}" for t in tiles]


def render_markdown(sections: Sequence[Section]) -> str:
    """The sections as one Markdown document, each picture linked to its file."""
    parts: list[str] = []
    for s in sections:
        parts.append(s.markdown.rstrip("\n"))
        if s.tiles:
            parts.append("\n".join(tile_table(s.tiles)))
        parts += [f"![{p.alt}]({p.file})" for p in s.pictures]
    return "\n\n".join(parts) + "\n"
