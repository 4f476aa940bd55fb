"""The canary judge through the real ASL on moto: per-intent ROLLBACK, PASS through every stage, the alert's
evidence. The rollout clock runs 120x (FastClock) so each one-second check judges two whole minutes."""

from __future__ import annotations

from kanaria_tools.cli.rollout import approve, status
from tests.support.rollout_world import (  # noqa: F401
    PREFIX,
    FastClock,
    ScriptedMinutes,
    World,
    request,
    world,
)

JUDGE = {"settle_seconds": 0}


def _stages(minutes: int = 6) -> list[dict]:
    return [
        {
            "name": f"canary-{p}",
            "percent": p,
            "min_duration_seconds": minutes * 60,
            "check_interval_seconds": 1,
            "gates": {},
        }
        for p in (5, 25, 50)
    ]


def _judged(w: World, canary_rates=None) -> ScriptedMinutes:
    services = w.services()
    services.clock = FastClock(speed=120)
    minutes = ScriptedMinutes(lambda: w.forward().share(w.canary_tg) if w.forward() else 0, canary_rates)
    services.canary = minutes
    return minutes


def test_a_healthy_candidate_passes_every_stage_on_the_judge(world: World) -> None:
    # Given identical arms, when the judge reads every minute, then each stage passes at its minimum.
    minutes = _judged(world)
    execution = world.start(request(stages=_stages(), judge=JUDGE), "judged-ok")
    asked: list[object] = []

    def answer() -> None:
        meta = world.meta("judged-ok")
        if not asked and meta and meta.approval_token:
            asked.append(approve(PREFIX, "judged-ok", None, "judge passed"))

    done = world.wait(execution, timeout=60, while_running=answer)
    assert done["status"] == "SUCCEEDED", done
    assert [d for d in world.decisions(execution) if d not in {"wait", "hold"}] == [
        "advance",
        "advance",
        "await_approval",
    ]
    assert minutes.minutes_read >= 18  # three stages of six judged minutes at least
    gate = world.meta("judged-ok").progress.gate
    assert gate is not None and gate.outcome == "PASS"
    assert any(c.gate == "judge:errors@*" and c.outcome == "PASS" for c in gate.checks)


def test_an_intent_local_regression_rolls_back_inside_the_first_stage(world: World) -> None:
    # Given a candidate fine on five intents but broken on recommendation from minute 2 (7% errors, 95% of answers
    # below the primary's p10), then the judge rolls the 5% stage back and the alert names the intent and counts.
    def broken(minute: int, metric: str, intent: str) -> float | None:
        if minute >= 2 and intent == "recommendation":
            return {"errors": 0.07, "poor_quality": 0.95}.get(metric)
        return None

    _judged(world, broken)
    execution = world.start(request(stages=_stages(), judge=JUDGE), "judged-bad")
    done = world.wait(execution, timeout=60)
    assert done["status"] == "FAILED" and done.get("error") == "Kanaria.RolledBack", done
    assert world.forward().weights == {world.primary_tg: 100}
    record = world.services().store.rollback_record("judged-bad")
    assert record.trigger.kind == "gate_failed" and record.stage_name == "canary-5"
    [alert] = [a for a in world.alerts() if "ROLLBACK" in a["Subject"]]
    assert "judge:poor_quality@recommendation" in alert["Message"] or "judge:errors@recommendation" in alert["Message"]
    assert "on intent recommendation: canary" in alert["Message"]
    assert "evidence log M" in alert["Message"]
    shown = status(PREFIX, "judged-bad")
    failed = [c for c in shown["gate"]["checks"] if c["outcome"] == "FAIL"]
    assert failed and all(c["gate"].startswith("judge:") for c in failed)
    assert any("@recommendation" in c["gate"] and c["canary"] > c["primary"] for c in failed)
