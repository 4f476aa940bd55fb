"""The decision tiles: the judge replayed minute by minute gives the deployed judge's own evidence, the
per-minute difference has Newcombe's interval (statsmodels), a minute without traffic stays empty, the streams
that mattered are the ones that crossed, and the tile figure is readable (no label overlaps or is clipped)."""

from __future__ import annotations

import json

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from kanaria.canary import evidence
from kanaria.canary import judge as canary_judge
from kanaria.canary.judge import JudgeSettings
from kanaria_tools.rehearsal.results import PhaseResult, Reaction
from kanaria_tools.rehearsal.tiles_report import grid, markers, rollout_sections
from kanaria_tools.reports.decision_tiles import mattered, series_from_json, series_json
from kanaria_tools.reports.figure_check import label_problems
from kanaria_tools.reports.tile_chart import MARKER_STYLES, Markers, StageBand, tile_figure
from tests.unit.reports.builders import minute_counts, rollout_streams


def test_the_replay_ends_with_the_deployed_judges_evidence() -> None:
    # Given the minutes the judge read, fed at once as one look
    settings, minutes = JudgeSettings(), minute_counts()
    state = canary_judge.observe(
        settings, canary_judge.start(settings, minutes[0].minute, 60), minutes, minutes[-1].minute
    )
    # When the tiles replay them one minute at a time
    streams = {s.key: s for s in rollout_streams()}
    # Then every stream ends with the judge's statistic and threshold
    for key, stream in state.streams.items():
        assert streams[key].minutes[-1].statistic == pytest.approx(evidence.log_mixture(stream.log_r))
    assert streams["errors|*"].minutes[-1].threshold == pytest.approx(
        evidence.log_threshold(60, settings.stream_alpha(canary_judge.Metric.ERRORS, "*"))
    )


def test_only_the_faulty_streams_cross_and_never_before_the_fault() -> None:
    streams = rollout_streams(start_minute=10)
    crossed = {s.key: s.crossed_at for s in streams if s.crossed_at is not None}
    assert set(crossed) == {"errors|*", "errors|order_status"}
    assert all(at >= 20 for at in crossed.values())  # the canary's errors rise at rollout minute 10
    assert [s.key for s in mattered(streams)] == ["errors|*", "errors|order_status"]


def test_the_difference_has_newcombes_interval() -> None:
    minute = next(s for s in rollout_streams() if s.key == "errors|*").minutes[15]
    low, high = confint_proportions_2indep(
        minute.canary_events,
        minute.canary_trials,
        minute.primary_events,
        minute.primary_trials,
        method="newcomb",
        compare="diff",
        alpha=0.05,
    )
    assert minute.difference == pytest.approx(minute.canary_events / minute.canary_trials - 0.01)
    assert (minute.low, minute.high) == pytest.approx((low, high), abs=1e-9)
    assert minute.tolerance == pytest.approx(0.01)  # max(0.25 x 1%, 1 point)


def test_a_minute_without_traffic_is_left_empty() -> None:
    stream = next(s for s in rollout_streams(start_minute=10) if s.key == "errors|*")
    quiet = stream.minutes[5]
    assert quiet.canary_trials == 0 and quiet.difference is None and quiet.tolerance is None
    figure = tile_figure(stream, Markers(), "errors")
    plotted = figure.axes[0].lines[0].get_xdata()  # the difference points
    assert 15.5 not in list(plotted) and 14.5 in list(plotted) and 16.5 in list(plotted)


def test_the_tile_figure_is_readable_and_a_rollback_is_never_green() -> None:
    stream = mattered(rollout_streams())[0]
    marks = Markers(
        stages=(StageBand("canary-5", 5, 10, 15), StageBand("canary-25", 25, 15, 21)),
        faults=(11.5,),
        gate_failures=(19.8,),
        alarms=(20.0, 20.2),
        rollback=21.0,
    )
    figure = tile_figure(stream, marks, "Rollout cold-start: errors on all intents")
    assert label_problems(figure) == []
    texts = [t.get_text() for t in figure.legends[0].get_texts()]
    assert {"canary-5: canary 5%", "canary-25: canary 25%", "rollback", "alarm", "gate failure", "fault"} <= set(texts)
    red, green = int(MARKER_STYLES["rollback"][0][1:3], 16), int(MARKER_STYLES["rollback"][0][3:5], 16)
    assert green < red  # not a green


def test_streams_round_trip_through_result_json() -> None:
    stream = rollout_streams()[0]
    again = series_from_json(json.loads(json.dumps(series_json(stream))))
    assert again.key == stream.key and len(again.minutes) == len(stream.minutes)
    assert again.minutes[-1].statistic == pytest.approx(stream.minutes[-1].statistic)


def test_the_grid_has_every_stream_and_marks_what_crossed() -> None:
    tiles = grid(rollout_streams())
    assert len(tiles) == 7 * 7
    by_title = {t.title: t.status for t in tiles}
    assert by_title["errors on all intents"] == "bad" and by_title["errors on intent order_status"] == "bad"
    assert by_title["errors on intent chitchat"] == "idle"  # no canary data on that intent
    assert by_title["throttles on all intents"] == "ok"


def test_the_phase_markers_come_from_its_stages_and_reactions() -> None:
    phase = PhaseResult(
        "cold-start",
        "rollout",
        "rolled_back",
        "rolled_back",
        True,
        600,
        1800,
        detail={
            "stages": [(600, "canary-5", 5), (900, "canary-25", 25)],
            "streams": [series_json(s) for s in rollout_streams()],
        },
        reactions=[
            Reaction(700, "fault: errors", "fault"),
            Reaction(1190, "gate FAIL -> rollback: judge", "gate"),
            Reaction(1195, "human approval: approved (automatic)", "gate"),
            Reaction(1200, "kanaria-canary-critical OK -> ALARM", "composite"),
            Reaction(1250, "kanaria-canary-critical ALARM -> OK", "composite"),
            Reaction(1300, "rollback function restored primary 100 / canary 0", "rollback"),
        ],
        rollback_completed_at=1300,
    )
    marks = markers(phase)
    assert [(b.name, b.percent, b.start, b.end) for b in marks.stages] == [
        ("canary-5", 5, 10, 15),
        ("canary-25", 25, 15, pytest.approx(1300 / 60)),
    ]
    assert (
        marks.gate_failures == (1190 / 60,) and marks.alarms == (20.0,) and marks.rollback == pytest.approx(1300 / 60)
    )
    (section,) = rollout_sections(phase, ["## Rollout cold-start"])
    assert len(section.pictures) == 2 and len(section.tiles) == 49
