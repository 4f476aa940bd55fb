"""`kanaria analyze` (snapshots -> decisions) and `kanaria sample-size` (units per variant).

numpy/scipy are imported inside the command functions: `kanaria assign` imports this module and must start fast.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
from decimal import Decimal
from typing import Any, Iterator

from kanaria.errors import ValidationError
from kanaria_tools.cli.options import bound_problem, read_text

PROPORTION_FORMULA = "n = ceil((z_{1-a/2} + z_{1-b})^2 * (p1(1-p1) + p2(1-p2)) / mde^2), p2 = p1 + mde"
MEAN_FORMULA = "n = ceil(2 * sd^2 * (z_{1-a/2} + z_{1-b})^2 / mde^2)"
PARALLEL_MIN_SNAPSHOTS = 500  # below this, forking workers costs more than it saves


def register(subparsers: Any) -> None:
    """Add the `analyze` and `sample-size` subcommands."""
    analyze = subparsers.add_parser(
        "analyze",
        help="analyse experiment snapshots and print one decision per snapshot",
        description="Reads a JSON snapshot, a JSON array or JSON lines (one snapshot per line) and prints one "
        "JSON result per snapshot on stdout. See docs/analysis.md for the schemas.",
    )
    analyze.add_argument("--input", metavar="FILE", help="snapshot file; '-' reads stdin")
    analyze.add_argument("--jobs", metavar="N", help="worker processes (default: one per CPU for large inputs)")
    analyze.set_defaults(func=run_analyze)

    size = subparsers.add_parser(
        "sample-size",
        help="units per variant for a two-sided two-arm test",
        description=f"proportion: {PROPORTION_FORMULA}; mean: {MEAN_FORMULA}. The mde is absolute "
        "(0.02 = two percentage points for a proportion; metric units for a mean).",
    )
    size.add_argument("--metric", choices=("proportion", "mean"), default="proportion")
    size.add_argument("--baseline", metavar="P", help="control rate in (0, 1) (proportion)")
    size.add_argument("--sd", metavar="S", help="standard deviation of the metric (mean)")
    size.add_argument("--mde", metavar="D", help="minimum detectable effect, absolute")
    size.add_argument("--alpha", metavar="A", default="0.05", help="two-sided significance level (default 0.05)")
    size.add_argument("--power", metavar="P", default="0.8", help="power 1 - beta (default 0.8)")
    size.set_defaults(func=run_sample_size)


def _number(value: str | None, field: str, *, low: float | None = None, high: float | None = None) -> float:
    if value is None:
        raise ValidationError("is required", field=field)
    try:
        number = float(value)
    except ValueError:
        raise ValidationError(f"must be a number, got {value!r}", field=field) from None
    if not math.isfinite(number):
        raise ValidationError("must be finite", field=field)
    problem = bound_problem(number, gt=low, lt=high)
    if problem:
        raise ValidationError(f"{problem}, got {value}", field=field)
    return number


def run_sample_size(args: argparse.Namespace) -> int:
    """Print {"n_per_variant": int, ...} for the chosen metric kind."""
    from kanaria.stats import sample_size_two_means, sample_size_two_proportions

    alpha = _number(args.alpha, "--alpha", low=0.0, high=1.0)
    power = _number(args.power, "--power", low=0.0, high=1.0)
    mde = _number(args.mde, "--mde")
    if mde == 0.0:
        raise ValidationError("must not be 0", field="--mde")
    body: dict[str, Any] = {"metric": args.metric}
    if args.metric == "proportion":
        if args.sd is not None:
            raise ValidationError("only with --metric mean", field="--sd")
        baseline = _number(args.baseline, "--baseline", low=0.0, high=1.0)
        if not 0.0 < baseline + mde < 1.0:
            raise ValidationError(f"baseline + mde must be in (0, 1), got {baseline + mde:g}", field="--mde")
        n = sample_size_two_proportions(baseline, mde, alpha, power)
        body.update(baseline=baseline, treatment=baseline + mde, formula=PROPORTION_FORMULA)
    else:
        if args.baseline is not None:
            raise ValidationError("only with --metric proportion", field="--baseline")
        sd = _number(args.sd, "--sd", low=0.0)
        n = sample_size_two_means(sd, mde, alpha, power)
        body.update(sd=sd, formula=MEAN_FORMULA)
    body.update(mde=mde, alpha=alpha, power=power, n_per_variant=n, n_total=2 * n)
    print(json.dumps(body))
    return 0


def _read_input(path: str | None) -> str:
    if path is None:
        raise ValidationError("is required (a file, or '-' for stdin)", field="--input")
    return read_text(path, "--input")


def _loads(text: str) -> Any:
    # numbers with a fraction or exponent as Decimal: sums keep every digit written (a mean of 1e8 with SD 1 has
    # sum_sq ≈ 1e19 + 999, and the 999 would not survive a float)
    return json.loads(text, parse_float=Decimal)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _documents(text: str) -> list[tuple[int, Any]]:
    """(line, document) pairs: a whole-file JSON object or array is parsed here, JSON lines stay raw strings."""
    try:
        whole = _loads(text)
    except json.JSONDecodeError:
        return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    items = whole if isinstance(whole, list) else [whole]
    return list(enumerate(items, start=1))


def _analyze_one(item: tuple[int, Any]) -> tuple[str, dict[str, Any] | None]:
    """One output line and, for bad input, the error (with its line number)."""
    from kanaria.analysis import analyze_snapshot

    line, document = item
    try:
        if isinstance(document, str):
            try:
                document = _loads(document)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"invalid JSON: {exc.msg} (column {exc.colno})", field="snapshot") from None
        output: dict[str, Any] = analyze_snapshot(document).to_json()
        error = None
    except ValidationError as exc:
        error = {"line": line, **exc.to_dict()}
        output = {"line": line, "error": exc.to_dict()}
    return json.dumps(output, allow_nan=False, separators=(",", ":"), default=_plain), error


def _jobs(value: str | None, count: int) -> int:
    if value is None:
        return min(os.cpu_count() or 1, 8) if count >= PARALLEL_MIN_SNAPSHOTS else 1
    jobs = _number(value, "--jobs", low=0.0)
    if jobs != int(jobs):
        raise ValidationError("must be a whole number", field="--jobs")
    return int(jobs)


def _results(items: list[tuple[int, Any]], jobs: int) -> Iterator[tuple[str, dict[str, Any] | None]]:
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(_analyze_one, items)
        return
    # fork after the parent has imported numpy/scipy: workers start without re-importing them
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        yield from pool.imap(_analyze_one, items, chunksize=max(1, min(64, len(items) // (jobs * 8))))


def run_analyze(args: argparse.Namespace) -> int:
    """One JSON result (or {"line", "error"}) per snapshot on stdout; exit 2 if any snapshot was invalid."""
    text = _read_input(args.input)
    if not text.strip():
        raise ValidationError("input is empty", field="--input")
    items = _documents(text)
    jobs = _jobs(args.jobs, len(items))
    import kanaria.analysis  # noqa: F401  (numpy/scipy loaded once, before any fork)

    errors: list[dict[str, Any]] = []
    write = sys.stdout.write
    for output, error in _results(items, jobs):
        write(output + "\n")
        if error is not None:
            errors.append(error)
    if errors:
        first = errors[0]
        where = f"line {first['line']}: " if len(items) > 1 else ""
        raise ValidationError(
            f"{where}{first['reason']}",
            field=first.get("field"),
            details=[{"line": e["line"], "field": e.get("field"), "reason": e["reason"]} for e in errors],
        )
    return 0
