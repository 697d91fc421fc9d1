"""Medians over rounds, the aligned tables printed at the end, and the JSON file."""

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import Measurement


@dataclass(frozen=True)
class ScenarioSummary:
    scenario: str
    rounds: int
    api_rps: float | None
    api_p50_ms: float | None
    api_p99_ms: float | None
    pg_tps: float | None
    pg_p50_ms: float | None
    pg_p99_ms: float | None
    api_errors: int
    pg_errors: int
    # Ingest scenarios: actions per request (= rows per baseline transaction) and the
    # medians of actions/s; None for the others.
    actions_per_request: int | None = None
    api_actions_per_second: float | None = None
    pg_actions_per_second: float | None = None

    @property
    def ratio(self) -> float | None:
        """API throughput as a share of the raw-SQL throughput (1.0: no overhead)."""
        if self.api_rps is None or not self.pg_tps:
            return None
        return self.api_rps / self.pg_tps

    @property
    def actions_ratio(self) -> float | None:
        """API actions/s as a share of the baseline's rows/s."""
        if self.api_actions_per_second is None or not self.pg_actions_per_second:
            return None
        return self.api_actions_per_second / self.pg_actions_per_second


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(
    scenarios: Sequence[tuple[str, int | None]], measurements: Sequence[Measurement]
) -> list[ScenarioSummary]:
    """Per scenario (name, actions per request or None): medians over its rounds."""
    summaries = []
    for name, actions_per_request in scenarios:
        api = [m for m in measurements if m.scenario == name and m.side == "api"]
        pg = [m for m in measurements if m.scenario == name and m.side == "postgres"]
        summaries.append(
            ScenarioSummary(
                scenario=name,
                rounds=max(len(api), len(pg)),
                api_rps=_median([m.throughput for m in api]),
                api_p50_ms=_median([m.p50_ms for m in api]),
                api_p99_ms=_median([m.p99_ms for m in api]),
                pg_tps=_median([m.throughput for m in pg]),
                pg_p50_ms=_median([m.p50_ms for m in pg]),
                pg_p99_ms=_median([m.p99_ms for m in pg]),
                api_errors=sum(m.errors for m in api),
                pg_errors=sum(m.errors for m in pg),
                actions_per_request=actions_per_request,
                api_actions_per_second=_median([m.actions_per_second for m in api]),
                pg_actions_per_second=_median([m.actions_per_second for m in pg]),
            )
        )
    return summaries


def num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """Plain text: the first `left` columns left-aligned (labels), the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if index < left else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def summary_table(summaries: Sequence[ScenarioSummary]) -> str:
    headers = [
        "scenario",
        "API req/s",
        "API p50 ms",
        "API p99 ms",
        "PG tps",
        "PG p50 ms",
        "PG p99 ms",
        "API/PG",
        "errors API/PG",
    ]
    rows = [
        [
            s.scenario,
            num(s.api_rps),
            num(s.api_p50_ms, 2),
            num(s.api_p99_ms, 2),
            num(s.pg_tps),
            num(s.pg_p50_ms, 2),
            num(s.pg_p99_ms, 2),
            "-" if s.ratio is None else f"{s.ratio:.2f}",
            f"{s.api_errors}/{s.pg_errors}",
        ]
        for s in summaries
    ]
    return table(headers, rows)


def actions_table(summaries: Sequence[ScenarioSummary]) -> str:
    """The ingest scenarios only: requests and actions per second on both sides."""
    headers = [
        "scenario",
        "actions/req",
        "API req/s",
        "API actions/s",
        "PG tps",
        "PG rows/s",
        "API/PG",
    ]
    rows = [
        [
            s.scenario,
            str(s.actions_per_request),
            num(s.api_rps),
            num(s.api_actions_per_second, 0),
            num(s.pg_tps),
            num(s.pg_actions_per_second, 0),
            "-" if s.actions_ratio is None else f"{s.actions_ratio:.2f}",
        ]
        for s in summaries
        if s.actions_per_request is not None
    ]
    return table(headers, rows)


def rounds_table(measurements: Sequence[Measurement]) -> str:
    headers = [
        "round",
        "scenario",
        "side",
        "req|tx/s",
        "actions/s",
        "p50 ms",
        "p99 ms",
        "done",
        "errors",
        "cpu busy",
        "api cores",
        "pg cores",
        "load cores",
    ]
    rows = []
    for m in measurements:
        cpu = m.cpu
        rows.append(
            [
                str(m.round),
                m.scenario,
                m.side,
                num(m.throughput),
                num(m.actions_per_second, 0),
                num(m.p50_ms, 2),
                num(m.p99_ms, 2),
                str(m.completed),
                str(m.errors),
                "-" if cpu is None else f"{cpu.machine_busy_pct:.0f}%",
                "-" if cpu is None else f"{cpu.api_cores:.2f}",
                "-" if cpu is None else f"{cpu.postgres_cores:.2f}",
                "-" if cpu is None else f"{cpu.load_cores:.2f}",
            ]
        )
    return table(headers, rows, left=3)


def write_json(
    path: Path,
    *,
    meta: dict[str, Any],
    summaries: Sequence[ScenarioSummary],
    measurements: Sequence[Measurement],
    problems: Sequence[str],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        **meta,
        "ok": not problems,
        "problems": list(problems),
        "summary": [
            {
                "scenario": s.scenario,
                "rounds": s.rounds,
                "api_requests_per_second": s.api_rps,
                "api_p50_ms": s.api_p50_ms,
                "api_p99_ms": s.api_p99_ms,
                "pg_tps": s.pg_tps,
                "pg_p50_ms": s.pg_p50_ms,
                "pg_p99_ms": s.pg_p99_ms,
                "api_over_pg_throughput": s.ratio,
                "api_errors": s.api_errors,
                "pg_errors": s.pg_errors,
                "actions_per_request": s.actions_per_request,
                "api_actions_per_second": s.api_actions_per_second,
                "pg_rows_per_second": s.pg_actions_per_second,
                "api_over_pg_actions": s.actions_ratio,
            }
            for s in summaries
        ],
        "rounds": [m.as_json() for m in measurements],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
