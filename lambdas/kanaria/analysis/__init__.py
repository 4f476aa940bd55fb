"""Kanaria analysis: decision logic on an experiment snapshot (pure; numpy/scipy through kanaria.stats)."""

from kanaria.analysis.decision import Decision
from kanaria.analysis.efficiency import efficiency_report, pareto_front, variant_efficiency
from kanaria.analysis.engine import analyze_snapshot
from kanaria.analysis.schema import Snapshot, parse_snapshot

__all__ = [
    "Decision",
    "Snapshot",
    "analyze_snapshot",
    "efficiency_report",
    "pareto_front",
    "parse_snapshot",
    "variant_efficiency",
]
