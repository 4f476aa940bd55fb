"""The texts a human acts on: the rollback alert (what, why, which metrics, what was done, what next) and the
approval request (A/B summary, how to answer)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from kanaria.domain.rollout import Admission
from kanaria.domain.rollout_gates import GateCheck, GateResult, MetricSnapshot, Outcome, SideMetrics
from kanaria.domain.rollout_state import RollbackRecord, RollbackTrigger, approval_message, rollback_alert

P = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/primary/1111"
C = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/canary/2222"
SNAPSHOT_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)
SNAPSHOT = MetricSnapshot(
    window_start="2026-01-01T00:00:00+00:00",
    window_end="2026-01-01T04:00:00+00:00",
    canary=SideMetrics(observations=1000, errors=40, latency_p99_ms=4200),
    primary=SideMetrics(observations=19000, errors=19, latency_p99_ms=2100),
)
GATE = GateResult(
    outcome=Outcome.FAIL,
    snapshot=SNAPSHOT,
    checks=(
        GateCheck(gate="error_rate", outcome=Outcome.FAIL, reason="canary error rate 4.000% >= 0.500%"),
        GateCheck(gate="latency_p99", outcome=Outcome.FAIL, reason="canary p99 4200 ms > 2310 ms"),
    ),
)


def record(**over: object) -> RollbackRecord:
    base = dict(
        rollout_id="sonnet-v2-20260101T000000Z-abc123",
        at="2026-01-01T04:00:05+00:00",
        trigger=RollbackTrigger(
            kind="gate_failed",
            source="state_machine",
            summary="stage canary-5: a gate failed; error_rate: canary error rate 4.000% >= 0.500%",
        ),
        stage_name="canary-5",
        stage_index=0,
        percent_before=5,
        config_hash="cfg-0001",
        model_id="anthropic.claude-3-5-sonnet-v2",
        canary_target_group=C,
        primary_target_group=P,
        weights_before={P: 95, C: 5},
        weights_after={P: 100},
        stickiness_before=True,
        metrics_snapshot=SNAPSHOT.model_dump(mode="json"),
        gate=GATE.model_dump(mode="json"),
        experiment_id="exp-canary",
        variant="treatment",
        variant_stopped=True,
        admission_after=Admission(
            allowed=False, reason="cooldown", cooldown_until="2026-01-02T04:00:05+00:00", rollbacks_in_window=1
        ),
    )
    return RollbackRecord(**{**base, **over})


def test_rollback_alert_says_what_why_metrics_what_was_done_and_what_next() -> None:
    subject, body = rollback_alert(record())
    assert subject == "[Kanaria] ROLLBACK sonnet-v2-20260101T000000Z-abc123 at canary-5 (gate_failed)"
    sections = [line for line in body.splitlines() if line and not line.startswith(" ") and not line.startswith("-")]
    assert [s.split(" ", 1)[0].rstrip(":") for s in sections] == ["WHAT", "WHY", "METRICS", "GATES", "WHAT", "WHAT"]
    assert "ROLLED BACK at stage canary-5 (5% canary)" in body
    assert re.search(r"error rate\s+4\.000%\s+0\.100%", body)  # canary vs primary side by side
    assert re.search(r"p99 latency\s+4200 ms\s+2100 ms", body)
    assert re.search(r"CSAT\s+missing\s+missing", body)  # missing is shown as missing, never 0
    assert "[FAIL] error_rate: canary error rate 4.000% >= 0.500%" in body
    assert "{primary: 95, canary: 5} -> {primary: 100}" in body
    assert "variant 'treatment' stopped" in body
    assert "cannot start again before 2026-01-02T04:00:05+00:00" in body
    assert "1/3" in body and "kanaria rollout status sonnet-v2-20260101T000000Z-abc123" in body


def test_alert_tells_a_human_to_finish_a_failed_variant_stop_and_a_rejection() -> None:
    rejected = Admission(allowed=False, reason="rejected", rejected=True, rollbacks_in_window=3)
    _, body = rollback_alert(
        record(variant_stopped=False, variant_stop_error="unknown experiment", admission_after=rejected)
    )
    assert "stopping variant 'treatment' FAILED (unknown experiment)" in body
    assert "POST /experiments/exp-canary/variants/treatment/stop" in body
    assert "REJECTED for good (3 rollbacks in 7 days)" in body


def test_alert_subject_fits_sns() -> None:
    subject, _ = rollback_alert(record(rollout_id="x" * 80, stage_name="ステージ"))
    assert len(subject) <= 100 and subject.isascii()


def test_alert_without_metrics_says_so() -> None:
    _, body = rollback_alert(record(metrics_snapshot={"error": "metrics unavailable: throttled"}, gate=None))
    assert "metrics unavailable: throttled" in body and "(no gate evaluated yet)" in body


def test_approval_message_has_the_ab_summary_and_how_to_answer() -> None:
    from kanaria.domain.rollout import admission
    from kanaria.domain.rollout_plan import parse_rollout_request
    from kanaria.domain.rollout_state import Progress, Rollout, RolloutState
    from tests.support.rollout_world import request  # a valid request document

    parsed = parse_rollout_request(request())
    state = RolloutState(
        rollout_id="r-1",
        rollout=Rollout(
            rollout_id="r-1",
            execution_arn="arn:exec",
            listener_arn="arn:listener",
            primary_target_group=P,
            canary_target_group=C,
            candidate=parsed.candidate,
            plan=parsed.plan,
            offline_evaluation=parsed.offline_evaluation,
            admission=admission([], False, SNAPSHOT_TIME),
            created_at="2026-01-01T00:00:00+00:00",
        ),
        progress=Progress(
            stage_name="canary-50",
            percent=50,
            gate=GATE.model_copy(update={"outcome": Outcome.PASS}).model_dump(mode="json"),
        ),
    )
    subject, body = approval_message(state, "TOKEN-123")
    assert subject == "[Kanaria] APPROVAL needed: r-1 to 100%"
    assert "A/B SUMMARY" in body and "error rate" in body
    assert "kanaria rollout approve r-1" in body and "kanaria rollout reject r-1" in body
    assert "TOKEN-123" in body and "within 60s" in body
