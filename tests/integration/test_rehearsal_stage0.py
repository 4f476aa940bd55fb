"""Stage 0 rehearsed for real (scenarios/haiku-recommendations-stage0.json, ~45 s): before each rollout the
rehearsal runs the candidate's offline evaluation (offline adapter) on the golden dataset and stores it in the
deployed evaluation bucket and table; the deployed prepare step refuses Claude 3.5 Haiku (recommendation pass
rate 60% < 80%) from the stored result and lets Sonnet v2 through. Subprocess, like test_rehearsal.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.rehearsal_run import rehearse


@pytest.mark.slow
def test_stage0_rehearsal(tmp_path: Path) -> None:
    completed, output, result = rehearse("haiku-recommendations-stage0", tmp_path)
    assert completed.returncode == 0, f"rehearsal failed: {result.get('error')}\n{output[-6000:]}"
    assert "kanaria:allowOfflineEvaluation=true" in output
    phases = {p["name"]: p for p in result["phases"]}
    haiku, sonnet = phases["haiku-stage0"], phases["sonnet-v2-stage0"]
    assert haiku["outcome"] == "refused" and sonnet["outcome"] == "completed"
    haiku_stage0 = [r["what"] for r in haiku["reactions"] if r["kind"] == "stage 0"]
    assert any("recommendation FAIL (60%" in what and "kanaria-evaluations" in what for what in haiku_stage0)
    assert any("refused the rollout from the stored evaluation" in what for what in haiku_stage0)
    assert "stage 0 refused for" in output and "recommendation: pass rate 60% < required 80%" in output
    assert any("recommendation PASS" in r["what"] for r in sonnet["reactions"] if r["kind"] == "stage 0")
