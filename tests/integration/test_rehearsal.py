"""The short rehearsal end to end, as `make demo` runs it: moto in process, the real CDK deploy of every stack,
the experiment through the deployed functions, a healthy canary that completes and a cold-start latency
regression that the alarms roll back (scenarios/smoke.json). Runs the CLI in a subprocess: the rehearsal adapts
moto process-wide, which must not leak into other tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KANARIA = Path(sys.executable).parent / "kanaria"


@pytest.mark.slow
def test_short_rehearsal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_VERSION_CHECK="true")
    completed = subprocess.run([str(KANARIA), "rehearse", "smoke", "--reports", str(tmp_path), "--plain"], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=600)
    output = completed.stdout + completed.stderr
    results = list(tmp_path.glob("smoke-*/result.json"))
    assert results, f"no report was written:\n{output[-4000:]}"
    result = json.loads(results[0].read_text(encoding="utf-8"))
    phases = {p["name"]: p for p in result["phases"]}
    assert completed.returncode == 0, f"rehearsal failed: {result.get('error')}\n{output[-6000:]}"
    assert result["ok"] is True
    assert phases["upgrade-v2"]["outcome"] == "completed"
    cold = phases["cold-start"]
    assert cold["outcome"] == "rolled_back"
    kinds = {r["kind"] for r in cold["reactions"]}
    assert {"alarm", "composite", "rollback", "fault"} <= kinds
    assert cold["fault_to_rollback_seconds"] is not None and cold["fault_to_rollback_seconds"] > 0
    assert any("ALARM" in a["subject"] and "critical" in a["subject"] for a in result["alerts"])
    assert any(t["alarm"].endswith("canary-critical") and t["new"] == "ALARM" and
               any(":lambda:" in x for x in t["actions"]) for t in result["alarm_transitions"])
    assert (results[0].parent / "timeline.svg").read_text(encoding="utf-8").startswith("<svg")
    assert "## Outcomes" in (results[0].parent / "report.md").read_text(encoding="utf-8")
