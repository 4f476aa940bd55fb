"""Readable progress: plain lines always; a live table redrawn in place on a terminal, printed as plain lines
(only when its content changes) otherwise."""

from __future__ import annotations

import sys
import time
from typing import Sequence, TextIO

from kanaria_tools.rehearsal.clock import fmt


class Progress:
    """Writes progress to `out` (stdout by default)."""

    def __init__(self, out: TextIO | None = None, live: bool | None = None, quiet: bool = False):
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.quiet = quiet
        self._live_lines = 0
        self._last_table: tuple[object, ...] | None = None
        self._started = time.monotonic()

    def _clear_live(self) -> None:
        if self.live and self._live_lines:
            self.out.write(f"\x1b[{self._live_lines}F\x1b[J")
            self._live_lines = 0

    def line(self, text: str = "", *, at: float | None = None) -> None:
        """A permanent line (optionally prefixed with a scenario time)."""
        if self.quiet:
            return
        self._clear_live()
        prefix = f"{fmt(at)}  " if at is not None else ""
        self.out.write(f"{prefix}{text}\n")
        self.out.flush()
        self._last_table = None

    def section(self, title: str) -> None:
        """A heading with the wall time since start."""
        elapsed = time.monotonic() - self._started
        self.line()
        self.line(f"== {title}  [{elapsed:5.1f}s]")

    def table(
        self,
        title: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[object]],
        *,
        at: float | None = None,
        key: object = None,
    ) -> None:
        """A table redrawn in place (TTY) or, not on a TTY, printed as plain lines when `key` (default: the whole
        content) changed."""
        if self.quiet:
            return
        cells = [[str(c) for c in headers]] + [[("-" if c is None else str(c)) for c in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
        lines = [f"{fmt(at) if at is not None else ''}  {title}"]
        for index, row in enumerate(cells):
            lines.append("   " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if index == 0:
                lines.append("   " + "  ".join("-" * w for w in widths))
        if self.live:
            self._clear_live()
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()
            self._live_lines = len(lines)
            return
        shown: tuple[object, ...] = tuple(lines[1:]) if key is None else (key,)
        if shown == self._last_table:
            return
        self._last_table = shown
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def freeze(self) -> None:
        """Keep the current live table on screen (the next output goes below it)."""
        self._live_lines = 0
