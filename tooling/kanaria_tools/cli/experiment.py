"""`kanaria experiment create|get|list|start|pause|resume|complete` against a deployed stack."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kanaria.errors import ValidationError
from kanaria.names import DEFAULT_PREFIX

_ACTIONS = ("start", "pause", "resume", "complete")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `experiment` subcommand group."""
    parser = subparsers.add_parser("experiment", help="manage experiments of a deployed stack (or the local rehearsal)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="deployment prefix (default: %(default)s)")
    sub = parser.add_subparsers(dest="experiment_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a draft from a definition file")
    create.add_argument("definition", type=Path, metavar="EXP.json")
    get = sub.add_parser("get", help="show one experiment with its audit trail")
    get.add_argument("experiment_id")
    sub.add_parser("list", help="list experiments")
    for action in _ACTIONS:
        p = sub.add_parser(action, help=f"{action} an experiment")
        p.add_argument("experiment_id")
        p.add_argument("--expected-version", type=int, help="refuse if the experiment changed since this version")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the experiments API function."""
    from kanaria_tools.lambda_api import LambdaApiClient

    client = LambdaApiClient("experiments", prefix=args.prefix)
    command = args.experiment_command
    if command == "create":
        try:
            document = json.loads(args.definition.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValidationError(f"file not found: {args.definition}", field="definition") from None
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON: {exc}", field="definition") from None
        result = client.call("POST", "/experiments", document)
    elif command == "get":
        result = client.call("GET", f"/experiments/{args.experiment_id}")
    elif command == "list":
        result = client.call("GET", "/experiments")
    else:
        body = {"action": command}
        if args.expected_version is not None:
            body["expected_version"] = args.expected_version
        result = client.call("POST", f"/experiments/{args.experiment_id}/transitions", body)
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
