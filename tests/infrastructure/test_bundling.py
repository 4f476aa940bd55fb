"""Docker-free layer bundling: pip asked for wheels Lambda's python3.14 (Amazon Linux 2023) can load, test
folders and caches pruned from what it installed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.constructs import bundling


def test_pip_gets_both_manylinux_tags_and_the_layer_is_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_pip(args: list[str], check: bool) -> Any:
        # what pip would leave: packages with their test suites and caches
        calls.append(args)
        target = Path(args[args.index("--target") + 1])
        for folder in ("numpy/tests", "numpy/linalg/tests", "scipy/stats/tests", "scipy/stats/__pycache__"):
            (target / folder).mkdir(parents=True)
            (target / folder / "x.py").write_text("", encoding="utf-8")
        (target / "scipy/stats/_stats_py.py").write_text("", encoding="utf-8")
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)
    assert bundling.PipLayerBundling(Path("layers/analysis/requirements.txt")).try_bundle(str(tmp_path))
    (args,) = calls
    platforms = [args[i + 1] for i, arg in enumerate(args) if arg == "--platform"]
    # numpy/scipy publish CPython 3.14 wheels only as manylinux_2_28 (manylinux2014 alone finds no numpy)
    assert platforms == ["manylinux2014_x86_64", "manylinux_2_28_x86_64"]
    assert args[args.index("--python-version") + 1] == "3.14" and "--only-binary=:all:" in args
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == [
        "python",
        "python/numpy",
        "python/numpy/linalg",
        "python/scipy",
        "python/scipy/stats",
        "python/scipy/stats/_stats_py.py",
    ]
