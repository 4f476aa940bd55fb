"""The label check every figure passes: each drawn text inside the figure and no two texts overlapping, measured
with matplotlib's own renderer (what a browser would show, without one)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

TOLERANCE = 0.5  # pixels: anti-aliasing rounding, not a visible overlap
# pixels a label must keep from the figure's edge: a browser draws SVG text with its own sans-serif font, a little
# wider or narrower than the one measured here, so a label that just fits here may be cut off there
EDGE_MARGIN = 3.0


@dataclass(frozen=True)
class DrawnText:
    """One piece of text as the renderer drew it, with its box in display pixels."""

    text: str
    box: Bbox


def drawn_texts(figure: Figure) -> list[DrawnText]:
    """Every piece of text the renderer actually draws (ticks outside the view are never drawn), with its box."""
    canvas = FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    drawn: list[DrawnText] = []
    draw_text = renderer.draw_text

    def recording(gc: Any, x: float, y: float, s: str, prop: Any, angle: float, ismath: Any = False, mtext: Any = None):
        if s.strip() and mtext is not None:
            drawn.append(DrawnText(s, mtext.get_window_extent(renderer)))
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = recording  # type: ignore[method-assign]
    figure.draw(renderer)
    return drawn


def _shrunk(box: Bbox) -> Bbox:
    return Bbox.from_extents(box.x0 + TOLERANCE, box.y0 + TOLERANCE, box.x1 - TOLERANCE, box.y1 - TOLERANCE)


def label_problems(figure: Figure) -> list[str]:
    """Every label cut off or within EDGE_MARGIN of the edge ('clipped: TEXT') and every overlapping pair
    ('overlap: A / B'); empty when clean."""
    drawn = drawn_texts(figure)
    page = figure.bbox
    problems = [
        f"clipped: {d.text}"
        for d in drawn
        if d.box.x0 < page.x0 + EDGE_MARGIN
        or d.box.y0 < page.y0 + EDGE_MARGIN
        or d.box.x1 > page.x1 - EDGE_MARGIN
        or d.box.y1 > page.y1 - EDGE_MARGIN
    ]
    problems += [
        f"overlap: {a.text} / {b.text}" for a, b in combinations(drawn, 2) if _shrunk(a.box).overlaps(_shrunk(b.box))
    ]
    return problems
