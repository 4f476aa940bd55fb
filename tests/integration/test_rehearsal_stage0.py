"""Stage 0 rehearsed for real (scenarios/haiku-recommendations-stage0.json, ~45 s): before each rollout the
rehearsal runs the candidate's offline evaluation (offline adapter) on the golden dataset and stores it in the
deployed evaluation bucket and table; the deployed prepare step refuses Claude 3.5 Haiku (recommendation pass
rate 60% < 80%) from the stored result and lets Sonnet v2 through. Subprocess, like test_rehearsal.py."""

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
def test_stage0_rehearsal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_VERSION_CHECK="true")
    completed = subprocess.run([str(KANARIA), "rehearse", "haiku-recommendations-stage0", "--reports", str(tmp_path),
                                "--plain"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = completed.stdout + completed.stderr
    results = list(tmp_path.glob("haiku-recommendations-stage0-*/result.json"))
    assert results, f"no report was written:\n{output[-4000:]}"
    result = json.loads(results[0].read_text(encoding="utf-8"))
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
