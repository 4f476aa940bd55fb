"""`--help` of every command and subcommand of the CLI, discovered from the argparse tree (not a hard-coded list):
exit 0, usage printed, no traceback. A `%` in a help text (argparse formats help with %) used to crash one."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Iterator

import pytest

from kanaria_tools.cli.main import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for action in parser._actions:  # noqa: SLF001 - argparse exposes its tree only here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_the_tree_is_discovered() -> None:
    assert ("rollout", "approve") in COMMANDS and ("experiment",) in COMMANDS
    assert len(COMMANDS) > 15


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "kanaria")
def test_help_exits_zero_without_a_traceback(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    out, err = capsys.readouterr()
    assert exited.value.code == 0, err
    assert out.startswith("usage: kanaria") and " ".join(("kanaria", *path)) in out.splitlines()[0] + out
    assert "Traceback" not in out + err


def test_rollout_help_in_a_real_process() -> None:
    """The console script as a user runs it (the reported crash)."""
    done = subprocess.run(
        [sys.executable, "-m", "kanaria_tools.cli.main", "rollout", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "approve promotion to 100% (SendTaskSuccess)" in " ".join(done.stdout.split())


def test_an_unexpected_error_is_one_json_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import NoCredentialsError

    from kanaria_tools.cli import rollout

    def no_credentials(*args: object, **kwargs: object) -> None:
        raise NoCredentialsError()

    monkeypatch.setattr(rollout, "status", no_credentials)
    monkeypatch.delenv("KANARIA_DEBUG", raising=False)
    assert main(["rollout", "status", "r-1"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and '"code": "NoCredentialsError"' in err and "Unable to locate credentials" in err
