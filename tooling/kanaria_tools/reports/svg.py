"""A matplotlib figure as a standalone SVG document (text kept as text, stable element ids)."""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure


def figure_svg(figure: Figure, salt: str) -> str:
    """The figure as SVG without the XML prolog (it is also inlined), ids stable across runs."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]
