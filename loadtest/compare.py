"""Two capacity reports side by side (a CPU and a GPU deployment, or two configurations), with
what a million requests cost on each: the cheaper per request is not always the faster node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from mlcanary.loadtest.cost import cost_per_million
from mlcanary.loadtest.report import plot_latency, write_report_files

__all__ = ["comparison_document", "write_comparison_report"]


def _side(label: str, doc: dict[str, Any], hourly_price: float) -> dict[str, Any]:
    at = doc["at_capacity"] or {}
    return {
        "label": label,
        "target": doc["target"],
        "status": doc["status"],
        "capacity_rps": doc["capacity_rps"],
        "p50_ms": at.get("p50_ms"),
        "p95_ms": at.get("p95_ms"),
        "p99_ms": at.get("p99_ms"),
        "server_cpu_pct": at.get("server_cpu_pct"),
        "gpu_utilization_pct": at.get("gpu_utilization_pct"),
        "hourly_price": hourly_price,
        "cost_per_million": cost_per_million(hourly_price, doc["capacity_rps"]),
        "report": doc,
    }


def comparison_document(
    a: tuple[str, dict[str, Any], float], b: tuple[str, dict[str, Any], float]
) -> dict[str, Any]:
    """Each side is (label, capacity document, hourly price)."""
    return {"objective": a[1]["objective"], "sides": [_side(*a), _side(*b)]}


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _markdown(doc: dict[str, Any]) -> str:
    sides = doc["sides"]
    objective = doc["objective"]
    rows = [
        ("target", [s["target"] for s in sides]),
        ("status", [s["status"] for s in sides]),
        ("capacity (req/s)", [_cell(s["capacity_rps"], ".1f") for s in sides]),
        ("p50 / p95 / p99 at capacity (ms)", [
            " / ".join(_cell(s[k], ".0f") for k in ("p50_ms", "p95_ms", "p99_ms")) for s in sides
        ]),
        ("server CPU at capacity (% of a core)",
         [_cell(s["server_cpu_pct"], ".0f") for s in sides]),
        ("GPU utilization at capacity (%)",
         [_cell(s["gpu_utilization_pct"], ".0f") for s in sides]),
        ("hourly price", [f"{s['hourly_price']:.2f}" for s in sides]),
        ("cost per million requests", [_cell(s["cost_per_million"], ".3f") for s in sides]),
    ]  # fmt: skip
    table = [
        f"| | {sides[0]['label']} | {sides[1]['label']} |",
        "|---|---:|---:|",
        *(f"| {name} | {left} | {right} |" for name, (left, right) in rows),
    ]
    return "\n".join(
        [
            f"# Capacity: {sides[0]['label']} against {sides[1]['label']}",
            "",
            f"Objective: p95 <= {objective['slo_p95_ms']:.0f} ms, error ratio <= "
            f"{objective['error_budget']:.2%}. Cost per million requests = hourly price / "
            "(capacity x 3600) x 1e6.",
            "",
            *table,
            "",
        ]
    )


def write_comparison_report(doc: dict[str, Any], out: Path) -> list[Path]:
    def draw(figure: Figure) -> None:
        grid = figure.add_gridspec(1, 2)
        for index, side in enumerate(doc["sides"]):
            column = figure.add_subfigure(grid[0, index])
            cost = _cell(side["cost_per_million"], ".3f")
            plot_latency(column, f"{side['label']}: {cost} per million requests", side["report"])

    return write_report_files(doc, out, "compare", markdown=_markdown(doc), size=(14, 5), draw=draw)
