"""`kanaria rollout start|status|list|approve|reject|abort`: argument parsing and output; the operations are in
kanaria_tools.rollout_control."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from kanaria.errors import NotFoundError, ValidationError
from kanaria.names import DEFAULT_PREFIX
from kanaria_tools.cli.options import add_aws_options, add_output_option, number, print_error, read_json
from kanaria_tools.rollout_control import abort, approve, list_rollouts, reject, start, status

__all__ = ["abort", "approve", "list_rollouts", "register", "reject", "run", "start", "status"]

STATUSES = ("running", "awaiting_approval", "promoting", "completed", "rolled_back")
PREPARE_GRACE_SECONDS = 60.0  # a rollout just started has no record until the state machine's prepare step ran
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: the watch redraws in place on a terminal


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `rollout` subcommand group."""
    parser = subparsers.add_parser("rollout", help="canary rollouts: start, status, list, approve, reject, abort")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="deployment prefix (default: %(default)s)")
    sub = parser.add_subparsers(dest="rollout_command", required=True, metavar="ACTION")
    start = sub.add_parser("start", help="validate a rollout request and start the canary rollout state machine")
    start.add_argument(
        "--request",
        required=True,
        metavar="FILE",
        help="JSON ('-': stdin): candidate, plan (optional), offline_evaluation (optional when `kanaria evaluate "
        "--bucket --table` stored one for the config hash), warmup (optional)",
    )
    start.add_argument("--dry-run", action="store_true", help="validate and print the effective plan only (no AWS)")
    status = sub.add_parser("status", help="stage, weights, last gate, pending approval, rollback record")
    status.add_argument("rollout_id")
    status.add_argument("--watch", action="store_true", help="redraw until the rollout ends (exit 0 completed, 1 not)")
    status.add_argument("--interval", type=number(gt=0, le=3600), default=5.0, help="--watch refresh, s (default 5)")
    status.add_argument("--timeout", type=number(gt=0), help="--watch: exit 1 if the rollout has not ended by then, s")
    listing = sub.add_parser("list", help="every rollout of the deployment, newest first")
    listing.add_argument("--status", choices=STATUSES, help="only rollouts in this status")
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
    leaves = [start, status, listing, approve, reject, abort]
    for leaf in leaves:
        add_output_option(leaf)
    add_aws_options(parser, leaves)
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Every argument checked before any AWS client: ids by the state machine's rule, texts non-blank."""
    from kanaria.domain.rollout_plan import ROLLOUT_ID_PATTERN

    rollout_id = getattr(args, "rollout_id", None)
    if rollout_id is not None and not re.match(ROLLOUT_ID_PATTERN, rollout_id):
        raise ValidationError(f"must match {ROLLOUT_ID_PATTERN}, got {rollout_id!r}", field="rollout_id")
    for field in ("reason", "token"):
        value = getattr(args, field, None)
        if value is not None and not value.strip():
            raise ValidationError("must not be blank", field=f"--{field}")
    if not getattr(args, "watch", False) and getattr(args, "timeout", None) is not None:
        raise ValidationError("only with --watch", field="--timeout")


def run(args: argparse.Namespace) -> int:
    """Dispatch one rollout command and print its result."""
    _check(args)
    command = args.rollout_command
    result: Any
    if command == "start":
        result = start(args.prefix, _read_request(args.request), dry_run=args.dry_run)
    elif command == "status":
        return _watch(args) if args.watch else _print(args, status(args.prefix, args.rollout_id))
    elif command == "list":
        result = {"rollouts": list_rollouts(args.prefix, args.status)}
    elif command == "approve":
        result = approve(args.prefix, args.rollout_id, args.token, args.comment)
    elif command == "reject":
        result = reject(args.prefix, args.rollout_id, args.token, args.reason)
    else:
        result = abort(args.prefix, args.rollout_id, args.reason)
    return _print(args, result)


def _print(args: argparse.Namespace, result: Any) -> int:
    from kanaria_tools.cli.rollout_view import render_list, render_status

    if args.output == "text" and args.rollout_command in ("status", "list"):
        sys.stdout.write(render_status(result) if args.rollout_command == "status" else render_list(result["rollouts"]))
    else:
        json.dump(result, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    return 0


def _watch(args: argparse.Namespace) -> int:
    """Redraw (text on a terminal) or print one JSON line per refresh; the end is a line on stderr when not 0."""
    from kanaria_tools.cli.rollout_view import render_status, watch

    out = sys.stdout
    redraw = args.output == "text" and out.isatty()

    def show(current: dict[str, Any]) -> None:
        if args.output == "text":
            out.write((CLEAR if redraw else "") + render_status(current) + ("" if redraw else "\n"))
        else:
            out.write(json.dumps(current, ensure_ascii=False, default=str, separators=(",", ":")) + "\n")
        out.flush()

    started = _clock()

    def fetch() -> dict[str, Any]:
        try:
            return status(args.prefix, args.rollout_id)
        except NotFoundError:
            if _clock() - started > PREPARE_GRACE_SECONDS:
                raise
            return {"rollout_id": args.rollout_id, "status": "pending", "reason": "not prepared yet"}

    end = watch(fetch, show, args.interval, args.timeout, sleep=_pause, clock=_clock)
    if end.exit_code:
        print_error({"code": end.code, "message": end.reason, "field": "rollout_id", "reason": end.reason})
    elif args.output == "text":
        out.write(end.reason + "\n")
    return end.exit_code


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _clock() -> float:
    return time.monotonic()


def _read_request(source: str) -> dict[str, Any]:
    document = read_json(source, "request")
    if not isinstance(document, dict):
        raise ValidationError("must be a JSON object", field="request")
    return document
