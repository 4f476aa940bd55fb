"""`kanaria` operator CLI: one subcommand module per concern, registered here.

The contract every command keeps: bad input (argparse's own errors included) is one JSON line on stderr and exit 2;
an operational failure (AWS, the emulator) is one JSON line and exit 1; nothing else reaches stderr as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from typing import Any, NoReturn, Sequence

from kanaria.errors import KanariaError, ValidationError
from kanaria_tools.cli.options import print_error

# Each module exposes register(subparsers); it sets `func` on its parsers. Modules must keep heavy imports
# (scipy, boto3) inside the command functions so that `kanaria assign` starts fast.
COMMAND_MODULES: tuple[str, ...] = (
    "kanaria_tools.cli.assign",  # assign (issue: assignment)
    "kanaria_tools.cli.experiment",  # experiment create|get|list|start|pause|resume|complete
    "kanaria_tools.cli.analyze",  # analyze, sample-size
    "kanaria_tools.cli.report",  # report EXPERIMENT_ID
    "kanaria_tools.cli.rollout",  # rollout start|status|list|approve|reject|abort
    "kanaria_tools.cli.demo",  # demo (local rehearsal), rehearse SCENARIO
    "kanaria_tools.cli.evaluate",  # evaluate (offline evaluation on a golden dataset)
)
_ARGUMENT = re.compile(r"^argument (?P<names>[^:]+): (?P<reason>.*)$", re.DOTALL)
_REQUIRED = "the following arguments are required: "
_UNRECOGNIZED = "unrecognized arguments: "
_ONE_OF = re.compile(r"^one of the arguments (?P<names>.+) is required$")


class UsageError(ValidationError):
    """A command line argparse refused (unknown option, missing argument, bad choice or number)."""

    code = "usage_error"

    def __init__(self, reason: str, field: str | None, prog: str, details: list[dict[str, Any]] | None = None):
        super().__init__(reason, field=field, details=details)
        self.prog = prog

    def to_dict(self) -> dict[str, Any]:
        """The common error body plus where to read the usage."""
        return {**super().to_dict(), "usage": f"{self.prog} --help"}


def usage_error(message: str, prog: str) -> UsageError:
    """argparse's message as a field and a reason."""
    if message.startswith(_REQUIRED):
        names = [n.strip() for n in message.removeprefix(_REQUIRED).split(",")]
        details = [{"field": n, "reason": "is required"} for n in names]
        return UsageError("is required", names[0], prog, details if len(names) > 1 else None)
    if message.startswith(_UNRECOGNIZED):
        extra = message.removeprefix(_UNRECOGNIZED)
        return UsageError(f"unrecognized argument(s): {extra}", extra.split()[0], prog)
    one_of = _ONE_OF.match(message)
    if one_of:
        names = one_of["names"].split()
        return UsageError(f"give one of {', '.join(names)}", names[0], prog)
    argument = _ARGUMENT.match(message)
    if argument:
        field = argument["names"].split("/")[-1]  # "-u/--unit": the long name
        return UsageError(argument["reason"], field, prog)
    return UsageError(message, None, prog)


class CliParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are KanariaErrors (printed as JSON by main), not usage text and exit."""

    def error(self, message: str) -> NoReturn:
        """Raise the UsageError for argparse's message."""
        raise usage_error(message, self.prog)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kanaria")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Parser with every registered subcommand."""
    parser = CliParser(prog="kanaria", description="Experiments and canary rollouts for LLM chatbots.")
    parser.add_argument("--version", action="version", version=f"kanaria {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a concern not built yet
        module.register(subparsers)
    return parser


def _run(args: argparse.Namespace) -> int:
    from kanaria_tools.aws import aws_target, using

    if not getattr(args, "aws", False):
        return int(args.func(args) or 0)
    with using(aws_target(args.region, args.profile)):
        return int(args.func(args) or 0)


def _unexpected(exc: Exception) -> int:
    """An AWS error (no credentials, AccessDenied...) or a bug: one JSON line, exit 1 (a missing region: 2)."""
    from kanaria_tools.aws import NO_REGION

    if type(exc).__name__ == "NoRegionError":
        print_error(ValidationError(NO_REGION, field="--region").to_dict())
        return 2
    response = getattr(exc, "response", None)  # botocore ClientError: {"Error": {"Code": ...}}
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    print_error(
        {"code": code or type(exc).__name__, "message": str(exc), "hint": "KANARIA_DEBUG=1 shows the traceback"}
    )
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit 0 on success, 2 on bad input (message on stderr naming the field), 1 on failure."""
    try:
        return _run(build_parser().parse_args(argv))
    except KanariaError as exc:
        print_error(exc.to_dict())
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback; KANARIA_DEBUG=1 re-raises
        if os.environ.get("KANARIA_DEBUG"):
            raise
        return _unexpected(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
