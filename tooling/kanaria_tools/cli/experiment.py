"""`kanaria experiment create|get|list|start|pause|resume|complete` against a deployed stack."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from kanaria.domain.experiment import ID_PATTERN
from kanaria.errors import ValidationError
from kanaria.names import DEFAULT_PREFIX
from kanaria_tools.cli.options import add_aws_options, add_output_option, number, read_json

_ACTIONS = ("start", "pause", "resume", "complete")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `experiment` subcommand group."""
    parser = subparsers.add_parser("experiment", help="manage experiments of a deployed stack (or the local rehearsal)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="deployment prefix (default: %(default)s)")
    sub = parser.add_subparsers(dest="experiment_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a draft from a definition file ('-': stdin)")
    create.add_argument("definition", metavar="EXP.json")
    create.add_argument("--dry-run", action="store_true", help="validate the definition locally and print it only")
    get = sub.add_parser("get", help="show one experiment with its audit trail")
    get.add_argument("experiment_id")
    listing = sub.add_parser("list", help="list experiments")
    leaves = [create, get, listing]
    for action in _ACTIONS:
        p = sub.add_parser(action, help=f"{action} an experiment")
        p.add_argument("experiment_id")
        p.add_argument(
            "--expected-version",
            type=number(ge=1, integer=True),
            help="refuse if the experiment changed since this version",
        )
        leaves.append(p)
    for leaf in leaves:
        add_output_option(leaf)
    add_aws_options(parser, leaves)
    parser.set_defaults(func=run)


def _request(args: argparse.Namespace) -> tuple[str, str, Any]:
    """Method, path and body, every argument checked locally first."""
    command = args.experiment_command
    if command == "create":
        from kanaria.domain.experiment import parse_experiment

        document = read_json(args.definition, "definition")
        parse_experiment(document)  # the API's own rules, before any AWS client
        return "POST", "/experiments", document
    if command == "list":
        return "GET", "/experiments", None
    if not re.match(ID_PATTERN, args.experiment_id):
        raise ValidationError(f"must match {ID_PATTERN}, got {args.experiment_id!r}", field="experiment_id")
    if command == "get":
        return "GET", f"/experiments/{args.experiment_id}", None
    body: dict[str, Any] = {"action": command}
    if args.expected_version is not None:
        body["expected_version"] = args.expected_version
    return "POST", f"/experiments/{args.experiment_id}/transitions", body


def run(args: argparse.Namespace) -> int:
    """Validate locally, then call the experiments API function (none for --dry-run)."""
    method, path, body = _request(args)
    if getattr(args, "dry_run", False):
        from kanaria.domain.experiment import parse_experiment

        result: Any = {"valid": True, "experiment": parse_experiment(body).model_dump(mode="json")}
    else:
        from kanaria_tools.lambda_api import LambdaApiClient

        result = LambdaApiClient("experiments", prefix=args.prefix).call(method, path, body)
    if args.output == "text":
        sys.stdout.write(render_text(result))
    else:
        json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    return 0


def _line(record: dict[str, Any]) -> str:
    experiment = record.get("experiment", {})
    weights = ", ".join(f"{v} {w:g}" for v, w in (record.get("weights") or {}).items())
    return (
        f"{experiment.get('id', '-'):32} {record.get('status', '-'):10} v{record.get('version', '-'):<4} "
        f"{record.get('updated_at', '-'):30} {weights}"
    )


def render_text(result: dict[str, Any]) -> str:
    """A readable view of an experiments API answer (one record, a list, or a dry run)."""
    if "experiments" in result:
        header = f"{'EXPERIMENT':32} {'STATUS':10} {'VER':5} {'UPDATED':30} WEIGHTS"
        return "\n".join([header, *(_line(r) for r in result["experiments"])]) + "\n"
    if result.get("valid"):
        experiment = result["experiment"]
        return f"{experiment['id']}: valid ({len(experiment['variants'])} variants, control {experiment['control']})\n"
    out = [_line(result)]
    for entry in result.get("audit", []):
        out.append(
            f"  {entry.get('at', '-')}  v{entry.get('version', '-')}  {entry.get('action')}  {entry.get('actor')}"
        )
    return "\n".join(out) + "\n"
