"""The short rehearsal end to end, as `make demo` runs it: moto in process, the real CDK deploy of every stack,
the experiment through the deployed functions, a healthy canary that completes and a cold-start latency
regression that the alarms roll back (scenarios/smoke.json). Runs the CLI in a subprocess: the rehearsal adapts
moto process-wide, which must not leak into other tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.rehearsal_run import rehearse


@pytest.mark.slow
def test_short_rehearsal(tmp_path: Path) -> None:
    completed, output, result = rehearse("smoke", tmp_path)
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
    assert any(
        t["alarm"].endswith("canary-critical") and t["new"] == "ALARM" and any(":lambda:" in x for x in t["actions"])
        for t in result["alarm_transitions"]
    )
    run_dir = next(tmp_path.glob("smoke-*"))
    assert (run_dir / "timeline.svg").read_text(encoding="utf-8").startswith("<svg")
    assert "## Outcomes" in (run_dir / "report.md").read_text(encoding="utf-8")
