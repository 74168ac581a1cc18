"""The capacity report: JSON for machines, a markdown table for people, a PNG of the knee.

The plot puts latency against achieved (not offered) throughput: past the knee a target serves
no more however much is offered, so the curve turns vertical there, which is the picture people
recognise. Every level is in the table, including the failed ones, with the reason it failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import ScalarFormatter

from mlcanary.loadtest.search import SearchResult
from mlcanary.loadtest.verdict import Objective

__all__ = ["capacity_document", "levels_table", "plot_latency", "write_capacity_report"]

_DPI = 110


def capacity_document(
    result: SearchResult, url: str, objective: Objective, details: dict[str, Any]
) -> dict[str, Any]:
    return {
        "target": url,
        "objective": {"slo_p95_ms": objective.slo_p95_ms, "error_budget": objective.error_budget},
        "status": result.status.value,
        "message": result.message,
        "capacity_rps": result.capacity_rps,
        "at_capacity": result.capacity.to_json() if result.capacity is not None else None,
        "levels": [judged.to_json() for judged in result.levels],
        **details,
    }


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def levels_table(levels: list[dict[str, Any]]) -> str:
    head = (
        "| offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | errors | server CPU % "
        "| GPU % | generator CPU % (busiest/total) | sustained | why not |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--:|---|\n"
    )
    rows = [
        f"| {lv['offered_rps']:.1f} | {lv['achieved_rps']:.1f} | {lv['p50_ms']:.0f} "
        f"| {lv['p95_ms']:.0f} | {lv['p99_ms']:.0f} | {lv['error_ratio']:.2%} "
        f"| {_number(lv['server_cpu_pct'])} | {_number(lv['gpu_utilization_pct'])} "
        f"| {lv['generator']['busiest_process_pct']:.0f}/{lv['generator']['total_pct']:.0f} "
        f"| {'yes' if lv['sustained'] else 'no'} | {'; '.join(lv['reasons'])} |"
        for lv in sorted(levels, key=lambda lv: lv["offered_rps"])
    ]
    return head + "\n".join(rows) + "\n"


def _markdown(doc: dict[str, Any]) -> str:
    objective = doc["objective"]
    capacity = doc["capacity_rps"]
    lines = [
        f"# Capacity of {doc['target']}",
        "",
        f"Objective: p95 <= {objective['slo_p95_ms']:.0f} ms, error ratio <= "
        f"{objective['error_budget']:.2%}.",
        "",
        f"**{f'{capacity:.1f} req/s' if capacity is not None else 'no capacity claimed'}** "
        f"({doc['status']}): {doc['message']}.",
        "",
        f"GPU: {doc.get('gpu', 'not sampled')}. "
        f"Server CPU: {doc.get('server_cpu', 'not sampled')}.",
        "",
        levels_table(doc["levels"]),
    ]
    return "\n".join(lines)


def plot_latency(figure: Figure | SubFigure, title: str, doc: dict[str, Any]) -> None:
    axes = figure.add_subplot()
    levels = sorted(doc["levels"], key=lambda lv: lv["achieved_rps"])
    x = [lv["achieved_rps"] for lv in levels]
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s-"), ("p99_ms", "^-")):
        axes.plot(x, [lv[key] for lv in levels], style, label=key.removesuffix("_ms"))
    axes.axhline(
        doc["objective"]["slo_p95_ms"], color="grey", linestyle="--", label="p95 objective"
    )
    if (knee := doc["at_capacity"]) is not None:
        axes.axvline(knee["achieved_rps"], color="red", linestyle=":")
        axes.annotate(
            f"capacity {knee['achieved_rps']:.1f} req/s",
            (knee["achieved_rps"], knee["p95_ms"]),
            xytext=(8, 20),
            textcoords="offset points",
            color="red",
            arrowprops={"arrowstyle": "->", "color": "red"},
        )
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.set_xlabel("achieved throughput (req/s)")
    axes.set_ylabel("latency (ms)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()


def write_report_files(
    doc: dict[str, Any],
    out: Path,
    stem: str,
    *,
    markdown: str,
    size: tuple[float, float],
    draw: Callable[[Figure], None],
) -> list[Path]:
    """The three forms of a report, side by side in ``out``: ``stem``.json, .md and .png."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = (out / f"{stem}.{ext}" for ext in ("json", "md", "png"))
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    md_path.write_text(markdown)
    figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure)
    figure.savefig(png_path, format="png", dpi=_DPI, facecolor="white")
    return [json_path, md_path, png_path]


def write_capacity_report(doc: dict[str, Any], out: Path, stem: str = "capacity") -> list[Path]:
    return write_report_files(
        doc,
        out,
        stem,
        markdown=_markdown(doc),
        size=(8, 5),
        draw=lambda figure: plot_latency(
            figure, f"latency against throughput: {doc['target']}", doc
        ),
    )
