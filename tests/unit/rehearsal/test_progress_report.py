"""Progress output (live table on a terminal, plain lines otherwise) and the report files."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

from kanaria_tools.rehearsal.alarms import Transition
from kanaria_tools.rehearsal.fleet import MinuteSample
from kanaria_tools.rehearsal.progress import Progress
from kanaria_tools.rehearsal.report_files import write_report
from kanaria_tools.rehearsal.results import PhaseResult, Reaction, RehearsalResult
from kanaria_tools.rehearsal.scenario import load_scenario
from kanaria_tools.reports.decision_tiles import series_json
from tests.unit.reports.builders import experiment_detail, rollout_streams


def test_plain_table_is_printed_only_when_its_key_changes() -> None:
    out = io.StringIO()
    progress = Progress(out, live=False)
    for requests in (10, 20, 30):
        progress.table("rollout", ["side", "requests"], [["canary", requests]], at=60, key="stage-1")
    progress.table("rollout", ["side", "requests"], [["canary", 40]], at=120, key="stage-2")
    text = out.getvalue()
    assert text.count("rollout") == 2 and "\x1b[" not in text
    assert "T+00:01:00" in text and "T+00:02:00" in text


def test_live_table_is_redrawn_in_place() -> None:
    out = io.StringIO()
    progress = Progress(out, live=True)
    progress.table("rollout", ["side"], [["canary"]])
    progress.table("rollout", ["side"], [["primary"]])
    progress.line("done")
    text = out.getvalue()
    assert "\x1b[4F\x1b[J" in text  # cursor up over the 4 table lines, clear
    assert text.rstrip().endswith("done")


def rehearsal_result(tmp_path: Path) -> RehearsalResult:
    """A finished smoke run with an experiment and a rolled-back rollout (also drawn by test_timeline_chart)."""
    result = RehearsalResult(load_scenario("smoke"), run_dir=tmp_path / "smoke-run", speed=60)
    rollout = PhaseResult(
        "cold-start",
        "rollout",
        "rolled_back",
        "rolled_back",
        True,
        600,
        1800,
        reactions=[
            Reaction(600, "stage canary-5 (5% canary)", "stage"),
            Reaction(700, "fault: latency_regression on the canary", "fault"),
            Reaction(1190, "gate FAIL -> rollback: judge: errors on all intents", "gate"),
            Reaction(1200, "kanaria-canary-critical OK -> ALARM", "composite"),
            Reaction(1300, "rollback function restored primary 100 / canary 0", "rollback"),
        ],
        fault_at=700,
        rollback_completed_at=1300,
        detail={
            "stages": [(600, "canary-5", 5), (900, "canary-25", 25)],
            "streams": [series_json(s) for s in rollout_streams(start_minute=10)],
        },
    )
    result.phases = [
        PhaseResult(
            "exp",
            "experiment",
            "any",
            "CONTINUE",
            True,
            0,
            500,
            detail=experiment_detail(),
        ),
        rollout,
    ]
    result.samples = [
        MinuteSample(m, side, 30, 3000.0 if side == "canary" and m < 20 else 2000.0, 0.0, 0.85, 5)
        for m in range(10, 30)
        for side in ("primary", "canary")
    ]
    result.weights = [(600, 0), (660, 5), (1300, 0)]
    result.alarm_thresholds = {"kanaria-canary-latency-p99": 2.0, "kanaria-canary-critical": 0.0}
    result.alarm_transitions = [
        Transition(1200, "kanaria-canary-latency-p99", "OK", "ALARM", "r", False),
        Transition(
            1200,
            "kanaria-canary-critical",
            "OK",
            "ALARM",
            "r",
            True,
            ("arn:aws:lambda:ap-northeast-1:123456789012:function:kanaria-rollback",),
        ),
    ]
    result.alerts = [(1210, 'ALARM: "kanaria-canary-critical" in Asia Pacific (Tokyo)', "{}")]
    return result


def test_report_files(tmp_path: Path) -> None:
    paths = write_report(rehearsal_result(tmp_path))
    markdown, svg, data, page = (p.read_text(encoding="utf-8") for p in paths)
    assert "| cold-start | rollout | rolled_back | OK: rolled_back | 10m 00s |" in markdown
    assert "Time from fault to completed rollback: **10m 00s**" in markdown
    assert "![timeline of rehearsal smoke](timeline.svg)" in markdown
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    summary = json.loads(data)
    assert summary["phases"][1]["fault_to_rollback_seconds"] == 600
    assert summary["phases"][0]["detail"]["analysis"]["result"]["decision"] == "CONTINUE"
    kept = [(s["metric"], s["intent"]) for s in summary["phases"][1]["detail"]["streams"]]
    assert kept == [("errors", "*"), ("errors", "order_status")]  # the streams that crossed
    latest = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "](smoke-run/timeline.svg)" in latest
    for name in ("timeline.svg", "experiment-exp.svg", "tile-cold-start-errors-all.svg"):
        assert (tmp_path / "smoke-run" / name).read_text(encoding="utf-8").startswith("<svg"), name
    assert page.startswith("<!DOCTYPE html>") and "<pre>" not in page and "| --- |" not in page


class _Page(HTMLParser):
    """What a browser would lay out: images, tables with their header cells, tiles by status."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.headers: list[str] = []
        self.tiles: list[str] = []
        self._in_header = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(values)
        self._in_header = tag == "th"
        if tag == "div" and values.get("class", "").startswith("tile "):
            self.tiles.append(values["class"].split()[1])

    def handle_data(self, data: str) -> None:
        if self._in_header and data.strip():
            self.headers.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        self._in_header = False if tag == "th" else self._in_header


def test_the_html_report_embeds_every_figure_and_shows_tables_and_tiles(tmp_path: Path) -> None:
    result = rehearsal_result(tmp_path)
    write_report(result)
    parsed = _Page()
    parsed.feed((tmp_path / "smoke-run" / "report.html").read_text(encoding="utf-8"))
    sources = [i["src"] for i in parsed.images]
    assert len(sources) == 1 + 1 + 2  # timeline, the experiment's effect, two tiles (the streams that crossed)
    assert all(s.startswith("data:image/svg+xml;base64,") for s in sources)  # readable without a server
    assert base64.b64decode(sources[0].split(",", 1)[1]).decode("utf-8").startswith("<svg")
    assert all(i["alt"] for i in parsed.images)
    for header in ("phase", "look", "relative lift [interval]", "SRM", "guardrails", "intent", "guardrail"):
        assert header in parsed.headers, header
    assert len(parsed.tiles) == 7 * 7  # every metric on all intents and on each of the six intents
    assert parsed.tiles.count("bad") == 2 and "idle" in parsed.tiles and "ok" in parsed.tiles


def test_alert_summary_shows_what_why_and_metrics_of_a_rollback() -> None:
    from kanaria_tools.rehearsal.alert_text import alert_summary

    body = "\n".join(
        [
            "WHAT: rolled back",
            "  candidate: x",
            "",
            "WHY (alarm): p99",
            "",
            "METRICS (canary vs primary):",
            "  p99 ms: 10637 vs 2718",
            "",
            "GATES (last evaluation):",
            "  error_rate PASS",
        ]
    )
    assert alert_summary(body) == [
        "WHAT: rolled back",
        "  candidate: x",
        "WHY (alarm): p99",
        "METRICS (canary vs primary):",
        "  p99 ms: 10637 vs 2718",
    ]
    alarm = json.dumps(
        {
            "AlarmName": "kanaria-canary-critical",
            "OldStateValue": "OK",
            "NewStateValue": "ALARM",
            "NewStateReason": "latency",
        }
    )
    assert alert_summary(alarm) == ["kanaria-canary-critical: OK -> ALARM", "latency"]
