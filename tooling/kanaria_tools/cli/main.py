"""`kanaria` operator CLI: one subcommand module per concern, registered here."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Sequence

from kanaria.errors import KanariaError

# Each module exposes register(subparsers); it sets `func` on its parsers. Modules must keep heavy imports
# (scipy, boto3) inside the command functions so that `kanaria assign` starts fast.
COMMAND_MODULES: tuple[str, ...] = (
    "kanaria_tools.cli.assign",  # assign (issue: assignment)
    "kanaria_tools.cli.experiment",  # experiment create|get|list|start|pause|resume|complete
    "kanaria_tools.cli.analyze",  # analyze, sample-size
    "kanaria_tools.cli.report",  # report EXPERIMENT_ID
    "kanaria_tools.cli.rollout",  # rollout start|status|approve|reject|abort
    "kanaria_tools.cli.demo",  # demo (local rehearsal), rehearse SCENARIO
    "kanaria_tools.cli.evaluate",  # evaluate (offline evaluation on a golden dataset)
)


def build_parser() -> argparse.ArgumentParser:
    """Parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="kanaria", description="Experiments and canary rollouts for LLM chatbots.")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit 0 on success, 2 on bad input (message on stderr naming the field), 1 on failure."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KanariaError as exc:
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - an AWS error (no credentials, AccessDenied...) or a bug: never a traceback
        if os.environ.get("KANARIA_DEBUG"):
            raise
        response = getattr(exc, "response", None)  # botocore ClientError: {"Error": {"Code": ...}}
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        print(
            json.dumps(
                {
                    "error": {
                        "code": code or type(exc).__name__,
                        "message": str(exc),
                        "hint": "KANARIA_DEBUG=1 shows the traceback",
                    }
                },
                ensure_ascii=False,
            ),
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
