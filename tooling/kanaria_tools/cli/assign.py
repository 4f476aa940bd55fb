"""`kanaria assign`: the embedded client on the command line (no network, same code as the Lambda)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterable

from kanaria.errors import ValidationError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `assign` subcommand."""
    parser = subparsers.add_parser(
        "assign",
        help="assign units to a variant of an experiment definition (offline, deterministic)",
        description="Prints one JSON object per unit: experiment_id, unit, variant, in_experiment, config, config_hash.",
    )
    parser.add_argument("--experiment", required=True, type=Path, metavar="EXP.json", help="experiment definition file")
    units = parser.add_mutually_exclusive_group(required=True)
    units.add_argument("--unit", help="one unit id (session or user id)")
    units.add_argument("--units", type=Path, metavar="FILE", help="file with one unit id per line ('-' for stdin)")
    parser.add_argument("--intent", help="the request's intent (default: none, i.e. the fallback profile)")
    parser.set_defaults(func=run)


def _read_experiment(path: Path):
    from kanaria.domain.experiment import parse_experiment

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"file not found: {path}", field="--experiment") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc}", field="--experiment") from None
    return parse_experiment(document)


def run(args: argparse.Namespace) -> int:
    """Assign one unit or a file of units and print JSON lines."""
    from kanaria.domain.assignment import ConfigResolver, assign
    from kanaria.domain.profiles import DEFAULT_PROFILES

    experiment = _read_experiment(args.experiment)
    resolver = ConfigResolver(experiment)
    out = sys.stdout
    units: Iterable[str]
    if args.unit is not None:
        units = [args.unit]
    elif str(args.units) == "-":
        units = (line.strip() for line in sys.stdin)
    else:
        try:
            handle = args.units.open(encoding="utf-8")
        except FileNotFoundError:
            raise ValidationError(f"file not found: {args.units}", field="--units") from None
        units = (line.strip() for line in handle)
    keys = ("experiment_id", "unit", "variant", "in_experiment", "config", "config_hash")
    write = out.write
    for unit in units:
        if not unit:
            continue
        result = assign(experiment, unit, args.intent, DEFAULT_PROFILES, configure=resolver).to_dict()
        write(json.dumps({k: result[k] for k in keys}, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0
