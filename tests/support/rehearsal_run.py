"""Run `kanaria rehearse SCENARIO` in a subprocess (the rehearsal adapts moto process-wide, which must not leak
into other tests) and read its result.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KANARIA = Path(sys.executable).parent / "kanaria"


def rehearse(scenario: str, reports: Path) -> tuple[subprocess.CompletedProcess[str], str, dict[str, Any]]:
    """The finished process, its stdout + stderr and the run's result.json (asserts that a report was written)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_VERSION_CHECK="true")
    completed = subprocess.run(
        [str(KANARIA), "rehearse", scenario, "--reports", str(reports), "--plain"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = completed.stdout + completed.stderr
    results = list(reports.glob(f"{scenario}-*/result.json"))
    assert results, f"no report was written:\n{output[-4000:]}"
    return completed, output, json.loads(results[0].read_text(encoding="utf-8"))
