"""What every bench section shares: the options of one run, progress lines, per-call timing, the checkout's paths."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kanaria_tools.paths import repository_root


@dataclass(frozen=True)
class Options:
    """The options of one `python -m kanaria_tools.bench` run, as every section reads them."""

    quick: bool = False
    decisions: int = 50_000
    rollout_jobs: int = 2
    rollout_speed: float | None = None


def root() -> Path:
    """The Kanaria checkout (docs/, examples/, scenarios/, the CDK app)."""
    return repository_root()


def benchmarks_file() -> Path:
    """docs/benchmarks.md, which the bench writes."""
    return root() / "docs" / "benchmarks.md"


def progress(message: str) -> None:
    """Progress on stderr so long runs are visibly alive."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def per_call_ns(fn: Callable[[int], object], n: int) -> list[int]:
    """Wall time of each of n calls, in ns."""
    times = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        fn(i)
        times.append(clock() - start)
    return times
