"""The HTML page: Markdown rendered (tables as tables), raw HTML in the text shown as text, pictures embedded as
data URIs (readable without a server), tiles as a grid; the Markdown report links the picture files."""

from __future__ import annotations

import base64

from kanaria_tools.reports.page import Picture, Section, Tile, render_html, render_markdown

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>é</text></svg>'


def _sections() -> list[Section]:
    return [
        Section(
            "## Outcomes\n\n| phase | outcome |\n| --- | --- |\n| cold-start | rolled_back <script>x</script> |",
            pictures=(Picture("timeline.svg", SVG, "timeline", "the whole rehearsal"),),
            tiles=(Tile("errors on all intents", "bad", ("log M 113.4 / 11.7",)),),
            tiles_caption="every stream",
        )
    ]


def test_the_page_renders_markdown_embeds_pictures_and_escapes_html() -> None:
    page = render_html("Rehearsal <smoke>", "NOT every outcome as expected", False, _sections())
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Rehearsal &lt;smoke&gt;</title>" in page
    assert '<p class="verdict bad">' in page
    assert "<table>" in page and "<th>phase</th>" in page and "| --- |" not in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    encoded = base64.b64encode(SVG.encode("utf-8")).decode("ascii")
    assert f'<img src="data:image/svg+xml;base64,{encoded}" alt="timeline">' in page
    assert '<div class="tile bad" role="cell"><b>errors on all intents</b>log M 113.4 / 11.7<br></div>' in page


def test_the_markdown_links_each_picture_file_and_lists_the_tiles() -> None:
    text = render_markdown(_sections())
    assert "![timeline](timeline.svg)" in text
    assert "- **errors on all intents** (bad): log M 113.4 / 11.7" in text
