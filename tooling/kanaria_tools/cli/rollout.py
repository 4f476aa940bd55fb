"""`kanaria rollout start|status|approve|reject|abort`: argument parsing and JSON output; the operations are in
kanaria_tools.rollout_control."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kanaria.errors import ValidationError
from kanaria.names import DEFAULT_PREFIX
from kanaria_tools.rollout_control import abort, approve, reject, start, status

__all__ = ["abort", "approve", "register", "reject", "run", "start", "status"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `rollout` subcommand group."""
    parser = subparsers.add_parser("rollout", help="canary rollouts: start, status, approve, reject, abort")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="deployment prefix (default: %(default)s)")
    sub = parser.add_subparsers(dest="rollout_command", required=True, metavar="ACTION")
    start = sub.add_parser("start", help="validate a rollout request and start the canary rollout state machine")
    start.add_argument(
        "--request",
        type=Path,
        required=True,
        metavar="FILE",
        help="JSON: candidate, plan (optional), offline_evaluation (optional when `kanaria evaluate "
        "--bucket --table` stored one for the config hash), warmup (optional)",
    )
    start.add_argument("--dry-run", action="store_true", help="validate and print the effective plan only")
    status = sub.add_parser("status", help="stage, weights, last gate, pending approval, rollback record")
    status.add_argument("rollout_id")
    approve = sub.add_parser("approve", help="approve promotion to 100%% (SendTaskSuccess)")
    approve.add_argument("rollout_id", nargs="?", help="looked up in the rollouts table unless --token is given")
    approve.add_argument("--token", help="the task token from the approval message")
    approve.add_argument("--comment", default="", help="recorded with the approval")
    reject = sub.add_parser("reject", help="reject promotion: the rollout rolls back (SendTaskFailure)")
    reject.add_argument("rollout_id", nargs="?")
    reject.add_argument("--token")
    reject.add_argument("--reason", required=True)
    abort = sub.add_parser("abort", help="roll back now: invokes the rollback function")
    abort.add_argument("rollout_id")
    abort.add_argument("--reason", required=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch one rollout command and print its JSON result."""
    command = args.rollout_command
    if command == "start":
        result = start(args.prefix, _read_request(args.request), dry_run=args.dry_run)
    elif command == "status":
        result = status(args.prefix, args.rollout_id)
    elif command == "approve":
        result = approve(args.prefix, args.rollout_id, args.token, args.comment)
    elif command == "reject":
        result = reject(args.prefix, args.rollout_id, args.token, args.reason)
    else:
        result = abort(args.prefix, args.rollout_id, args.reason)
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0


def _read_request(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"file not found: {path}", field="request") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc}", field="request") from None
    if not isinstance(document, dict):
        raise ValidationError("must be a JSON object", field="request")
    return document
