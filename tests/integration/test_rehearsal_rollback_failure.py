"""The rollback that cannot be lost, rehearsed (scenarios/rollback-function-failure.json, ~40 s): the deployed
rollback function raises on its first three invocations (the critical alarm's action and Lambda's two retries);
the reconciler, run on its schedule like the alarms are evaluated, restores primary 100 / canary 0 with one
rollback record and one rollback alert, and pages the failed invocation from the on-failure queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.rehearsal_run import rehearse


@pytest.mark.slow
def test_reconciler_restores_what_the_failing_rollback_function_could_not(tmp_path: Path) -> None:
    completed, output, result = rehearse("rollback-function-failure", tmp_path)
    assert completed.returncode == 0, f"rehearsal failed: {result.get('error')}\n{output[-6000:]}"
    (phase,) = result["phases"]
    detail = phase["detail"]
    assert phase["outcome"] == "rolled_back" and detail["weights_after"] == {"primary": 100, "canary": 0}
    assert detail["restored_by"] == "reconciler" and detail["rollback_alerts"] == 1
    assert detail["rollback_trigger"]["source"] == "reconciler"  # the one record, written by the reconciler
    reactions = [r["what"] for r in phase["reactions"]]
    failures = [w for w in reactions if w.startswith("rollback function failed: RuntimeError: injected fault")]
    assert len(failures) == 3, reactions  # the alarm's invocation and Lambda's two retries
    assert any(w.startswith("reconciler: alarm -> rolled_back") for w in reactions)
    assert any("reconciler paged 1 failed rollback invocation" in w for w in reactions)
    pages = [a for a in result.get("alerts", []) if "INVOCATION FAILED" in a.get("subject", "")]
    assert len(pages) == 1 and detail["rollout_id"] in pages[0]["subject"]
    assert phase["fault_to_rollback_seconds"] is not None and phase["fault_to_rollback_seconds"] < 15 * 60
