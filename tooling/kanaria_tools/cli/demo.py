"""`kanaria demo` (the default rehearsal) and `kanaria rehearse SCENARIO`: the whole deployed stack on this
machine (moto in process, real CDK deploy), driven by a scenario, with a report. Exit 0 only when every
expected outcome happened; 2 on a bad scenario or argument; 1 when the rehearsal could not run or an outcome
differed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kanaria_tools.cli.options import STDIN, number, read_json

if TYPE_CHECKING:
    from kanaria_tools.rehearsal.scenario import Scenario

DEFAULT_REPORTS = Path("reports")
MAX_SPEED = 3600.0  # the scenario clock's own upper bound


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `demo` and `rehearse`."""
    demo = subparsers.add_parser(
        "demo", help="local rehearsal of the default scenario (no AWS account needed)", description=__doc__
    )
    _common(demo)
    demo.set_defaults(func=run_demo)
    rehearse = subparsers.add_parser(
        "rehearse", help="run one rehearsal scenario (scenarios/*.json)", description=__doc__
    )
    rehearse.add_argument(
        "scenario", nargs="?", help="scenario name in scenarios/, a path to a JSON file, or '-' for stdin"
    )
    rehearse.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    rehearse.add_argument("--check", action="store_true", help="validate the scenario file and exit")
    _common(rehearse)
    rehearse.set_defaults(func=run_rehearse)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=number(ge=1, le=65535, integer=True),
        default=None,
        help="emulator port on 127.0.0.1 (default: a free one)",
    )
    parser.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="report directory (default: reports/)")
    parser.add_argument(
        "--speed",
        type=number(gt=0, le=MAX_SPEED),
        default=None,
        help="scenario seconds per wall second, > 0 (overrides the scenario's clock; checked by --check too)",
    )
    parser.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    parser.add_argument("--list-adaptations", action="store_true", help="print the emulator adaptations and exit")


def run_demo(args: argparse.Namespace) -> int:
    """The default scenario."""
    args.scenario = "default"
    args.list = args.check = False
    return run_rehearse(args)


def run_rehearse(args: argparse.Namespace) -> int:
    """Validate, rehearse, report; the exit status says whether every outcome was as expected."""
    from kanaria.errors import ValidationError
    from kanaria_tools.rehearsal.scenario import load_scenario

    if args.list_adaptations:
        return _list_adaptations()
    if args.list:
        return _list_scenarios()
    if not args.scenario:
        raise ValidationError("give a scenario name or path (kanaria rehearse --list shows them)", field="scenario")
    if args.scenario == STDIN:
        from kanaria_tools.rehearsal.scenario import parse_scenario

        scenario = parse_scenario(read_json(STDIN, "scenario"), "stdin")
    else:
        scenario = load_scenario(args.scenario)
    if args.check:
        print(
            f"{scenario.name}: valid ({len(scenario.rollouts)} rollouts, "
            f"{'an' if scenario.experiment else 'no'} experiment, {len(scenario.faults())} faults)"
        )
        return 0
    return _rehearse(scenario, args)


def _list_adaptations() -> int:
    from kanaria_tools.rehearsal.moto_adaptations import ADAPTATIONS, MOTO_VERSION

    print(f"moto {MOTO_VERSION} adaptations:")
    for a in ADAPTATIONS:
        print(f"- {a.name}\n    moto: {a.moto_behaviour}\n    rehearsal: {a.adaptation}")
    return 0


def _list_scenarios() -> int:
    from kanaria_tools.rehearsal.scenario import list_scenarios, load_scenario

    for path in list_scenarios():
        scenario = load_scenario(str(path))
        print(f"{path.stem:28} {scenario.description}")
    return 0


def _rehearse(scenario: Scenario, args: argparse.Namespace) -> int:
    """The rehearsal, its report and the outcome lines."""
    from kanaria_tools.rehearsal.clock import fmt_duration
    from kanaria_tools.rehearsal.progress import Progress
    from kanaria_tools.rehearsal.report_files import write_report
    from kanaria_tools.rehearsal.runner import Rehearsal

    progress = Progress(sys.stdout, live=False if args.plain else None)
    rehearsal = Rehearsal(scenario, progress=progress, reports_dir=args.reports, port=args.port, speed=args.speed)
    result = rehearsal.run()
    if result.run_dir is not None and result.run_dir.exists():
        paths = write_report(result)
        progress.section("Report")
        for path in paths:
            progress.line(f"  {path}")
    progress.section("Outcome")
    for phase in result.phases:
        mark = "OK  " if phase.ok else "FAIL"
        line = f"  {mark} {phase.kind} {phase.name}: {phase.outcome} (expected {phase.expected or 'any'})"
        if phase.fault_to_rollback is not None:
            line += f"; fault -> rollback complete in {fmt_duration(phase.fault_to_rollback)}"
        progress.line(line)
    if result.error:
        progress.line(f"  FAIL {result.error}")
    progress.line(
        f"  {'every outcome as expected' if result.ok else 'NOT every outcome as expected'} "
        f"(wall time {result.wall_seconds:.0f}s, deploy {result.deploy_seconds:.0f}s)"
    )
    return 0 if result.ok else 1
