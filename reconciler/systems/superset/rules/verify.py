"""Core: which charts a verification runs, and what its results say; the provider runs the queries.

Pure. After an apply, every chart of every dashboard the apply touched (the dashboard itself,
one of its charts, or a dataset or database under them) runs its saved query in the target;
`reconcile verify superset` runs every chart of the environment's desired dashboards. A chart
that fails is named by dashboard and chart, with Superset's error, so a Superset upgrade or a
dbt change that broke a dashboard is found before its users find it. A chart that could not be
checked at all (no saved query, and its params give none) fails the verification too: a pass
means every chart ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.systems.superset.rules.assets import chart_uuids
from reconciler.systems.superset.rules.bundle import Bundle
from reconciler.systems.superset.rules.importing import closure


@dataclass(frozen=True)
class ChartToRun:
    uuid: str
    name: str
    dashboards: tuple[str, ...]
    """Titles of the dashboards (among those verified) that show the chart."""

    @property
    def label(self) -> str:
        return f"{', '.join(self.dashboards) or '(no dashboard)'} / {self.name}"


def charts_to_verify(bundle: Bundle, touched: Iterable[str] | None = None) -> list[ChartToRun]:
    """Charts of the dashboards that contain anything in `touched` (uuids), plus touched charts on
    no such dashboard; every chart of every dashboard when `touched` is None."""
    changed = None if touched is None else set(touched)
    titles: dict[str, list[str]] = {}
    for dashboard in bundle.of("dashboards"):
        if changed is not None and not closure(bundle, [dashboard.uuid]) & changed:
            continue
        for uuid in chart_uuids(dashboard):
            titles.setdefault(uuid, []).append(dashboard.name)
    charts = {asset.uuid: asset for asset in bundle.of("charts")}
    for uuid in charts:
        if uuid not in titles and (changed is None or closure(bundle, [uuid]) & changed):
            titles[uuid] = []
    return sorted(
        (ChartToRun(uuid, charts[uuid].name, tuple(sorted(names))) for uuid, names in titles.items() if uuid in charts),
        key=lambda chart: (chart.dashboards, chart.name, chart.uuid),
    )


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNCHECKED = "not checked"
    """No query could be run at all (no saved query context, and its parameters give none): not a pass."""


@dataclass(frozen=True)
class ChartResult:
    chart: ChartToRun
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class Verification:
    """Every chart run in one environment, and how each went."""

    environment: str
    results: tuple[ChartResult, ...]

    def of(self, outcome: Outcome) -> list[ChartResult]:
        return [result for result in self.results if result.outcome == outcome]

    @property
    def ok(self) -> bool:
        """Every chart ran its query: one that failed or could not be checked fails the verification."""
        return not self.of(Outcome.FAILED) and not self.of(Outcome.UNCHECKED)

    def dashboards(self) -> set[str]:
        return {title for result in self.results for title in result.chart.dashboards}

    def summary(self) -> str:
        counts = f"{len(self.results)} chart(s) on {len(self.dashboards())} dashboard(s)"
        failed, unchecked = self.of(Outcome.FAILED), self.of(Outcome.UNCHECKED)
        text = f"verified {counts} in {self.environment}: "
        text += f"{len(failed)} failed" if failed else "every query ran" if not unchecked else "no query failed"
        if unchecked:
            text += f", {len(unchecked)} could not be checked"
        return text

    def failure_message(self) -> str:
        lines: list[str] = []
        for outcome, verb in ((Outcome.FAILED, "failed"), (Outcome.UNCHECKED, "could not be checked")):
            results = self.of(outcome)
            if results:
                lines.append(f"{len(results)} of {len(self.results)} chart(s) {verb} in {self.environment}:")
                lines += [f"  {result.chart.label}: {result.detail}" for result in results]
        return "\n".join(lines)


def result_error(answer: object) -> str | None:
    """The error a chart data answer carries in its body (a query can fail inside an HTTP 200)."""
    if not isinstance(answer, dict):
        return "the answer is not a JSON object"
    results = answer.get("result")
    if not isinstance(results, Sequence) or not results:
        return "the answer holds no query result"
    for result in results:
        if isinstance(result, dict) and (result.get("error") or result.get("status") == "failed"):
            return str(result.get("error") or "the query failed")
    return None
