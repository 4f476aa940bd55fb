"""`kanaria assign`: the embedded client on the command line (no network, same code as the Lambda)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterable

from kanaria.errors import ValidationError
from kanaria_tools.cli.options import one_stdin, read_json, read_lines


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `assign` subcommand."""
    parser = subparsers.add_parser(
        "assign",
        help="assign units to a variant of an experiment definition (offline, deterministic)",
        description="Prints one JSON object per unit: experiment_id, unit, variant, in_experiment, config, "
        "config_hash. Units and intents follow the assignment API's rules (no whitespace or control characters).",
    )
    parser.add_argument("--experiment", required=True, metavar="EXP.json", help="experiment definition ('-': stdin)")
    units = parser.add_mutually_exclusive_group(required=True)
    units.add_argument("--unit", help="one unit id (session or user id)")
    units.add_argument("--units", metavar="FILE", help="file with one unit id per line ('-' for stdin)")
    parser.add_argument("--intent", help="the request's intent (default: none, i.e. the fallback profile)")
    parser.set_defaults(func=run)


def _checked(experiment_id: str, unit: str, intent: str | None, field: str) -> Any:
    """The assignment API's own request model: the same unit and intent rules as the Lambda."""
    from kanaria.errors import validate
    from kanaria.handlers.models import AssignRequest

    try:
        return validate(AssignRequest, {"experiment_id": experiment_id, "unit": unit, "intent": intent})
    except ValidationError as exc:
        given = unit if exc.field == "unit" else intent
        where = field if exc.field == "unit" else "--intent" if exc.field == "intent" else exc.field
        reason = exc.reason
        if reason.startswith("String should match pattern"):
            limit = 256 if exc.field == "unit" else 64
            reason = f"must be 1 to {limit} characters without whitespace, control or invisible characters"
        raise ValidationError(f"{reason}, got {given!r}", field=where) from None


def _units(args: argparse.Namespace) -> Iterable[tuple[str, str]]:
    """(unit, field) pairs; blank lines of a units file are skipped, every other line must be a valid unit."""
    if args.unit is not None:
        yield args.unit, "--unit"
        return
    for number, line in enumerate(read_lines(args.units, "--units"), start=1):
        if line.strip():
            yield line, f"--units line {number}"


def run(args: argparse.Namespace) -> int:
    """Assign one unit or a file of units and print JSON lines; every unit is checked before any line is printed."""
    from kanaria.domain.assignment import ConfigResolver, assign
    from kanaria.domain.experiment import parse_experiment
    from kanaria.domain.profiles import DEFAULT_PROFILES

    one_stdin((args.experiment, args.units or ""), "--units")
    experiment = parse_experiment(read_json(args.experiment, "--experiment"))
    requests = [_checked(experiment.id, unit, args.intent, field) for unit, field in _units(args)]
    resolver = ConfigResolver(experiment)
    keys = ("experiment_id", "unit", "variant", "in_experiment", "config", "config_hash")
    write = sys.stdout.write
    for request in requests:
        result = assign(experiment, request.unit, request.intent, DEFAULT_PROFILES, configure=resolver).to_dict()
        write(json.dumps({k: result[k] for k in keys}, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0
