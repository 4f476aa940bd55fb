"""What every command shares: reading a file or stdin ('-'), typed option values, the AWS and output options."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from kanaria.errors import ValidationError

STDIN = "-"
OUTPUTS = ("json", "text")


def print_error(error: dict[str, Any]) -> None:
    """The error contract: one JSON line {"error": {...}} on stderr."""
    print(json.dumps({"error": error}, ensure_ascii=False), file=sys.stderr)


def read_text(source: str | Path, field: str) -> str:
    """The file's text, or stdin's for '-'; ValidationError naming `field` when it cannot be read."""
    if str(source) == STDIN:
        return sys.stdin.read()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"file not found: {path}", field=field) from None
    except IsADirectoryError:
        raise ValidationError(f"is a directory, not a file: {path}", field=field) from None
    except PermissionError:
        raise ValidationError(f"permission denied: {path}", field=field) from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", field=field) from None


def read_json(source: str | Path, field: str) -> Any:
    """The parsed JSON document of a file or stdin ('-')."""
    text = read_text(source, field)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", field=field
        ) from None


def read_lines(source: str | Path, field: str) -> Iterable[str]:
    """Lines of a file or stdin ('-'), without their line ends."""
    if str(source) == STDIN:
        return (line.rstrip("\r\n") for line in sys.stdin)
    return read_text(source, field).splitlines()


def one_stdin(sources: Iterable[str | Path], field: str) -> None:
    """stdin can be read once: refuse '-' given twice."""
    if sum(1 for s in sources if str(s) == STDIN) > 1:
        raise ValidationError("'-' (stdin) can be given once", field=field)


def number(
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    integer: bool = False,
) -> Callable[[str], float]:
    """An argparse type: a finite number within the bounds, the error saying the bound ("must be > 0")."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {'whole ' if integer else ''}number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        if integer and value != int(value):
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}")
        problem = bound_problem(value, gt=gt, ge=ge, lt=lt, le=le)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text}")
        return int(value) if integer else value

    return convert


def bound_problem(
    value: float, *, gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None
) -> str | None:
    """'must be > 0' ('>= 1 and <= 3600'...) when `value` is out of the bounds, else None."""
    bounds = [(b, op) for b, op in ((gt, ">"), (ge, ">="), (lt, "<"), (le, "<=")) if b is not None]
    checks = {">": value > (gt or 0), ">=": value >= (ge or 0), "<": value < (lt or 0), "<=": value <= (le or 0)}
    if all(checks[op] for _, op in bounds):
        return None
    return "must be " + " and ".join(f"{op} {bound:g}" for bound, op in bounds)


def add_aws_options(group: argparse.ArgumentParser, leaves: Iterable[argparse.ArgumentParser] = ()) -> None:
    """--region and --profile on a command group and each of its subcommands (either position works)."""
    for parser, default in ((group, None), *((leaf, argparse.SUPPRESS) for leaf in leaves)):
        parser.add_argument(
            "--region", default=default, help="AWS region (default: $AWS_REGION, else the profile's or boto3's)"
        )
        parser.add_argument("--profile", default=default, help="AWS config profile (default: boto3's)")
    group.set_defaults(aws=True)


def add_output_option(parser: argparse.ArgumentParser, default: str = "json") -> None:
    """--output json|text."""
    parser.add_argument(
        "--output", choices=OUTPUTS, default=default, help="json (one document) or text (readable); default %(default)s"
    )
