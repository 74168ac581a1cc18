from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

from mlcanary.loadtest.compare import comparison_document, write_comparison_report
from mlcanary.loadtest.level_runner_scripted import ScriptedLevelRunner
from mlcanary.loadtest.report import capacity_document, write_capacity_report
from mlcanary.loadtest.search import SearchSettings, search_capacity
from mlcanary.loadtest.verdict import Objective

OBJECTIVE = Objective(slo_p95_ms=50)


def document(capacity: float, url: str) -> dict[str, Any]:
    result = search_capacity(
        ScriptedLevelRunner(capacity), OBJECTIVE, SearchSettings(start_rps=10, resolution=0.1)
    )
    return capacity_document(result, url, OBJECTIVE, {"gpu": "no GPU"})


def test_capacity_report_files_are_readable(tmp_path: Path) -> None:
    doc = document(130, "http://127.0.0.1:1")
    paths = write_capacity_report(doc, tmp_path)
    assert [p.name for p in paths] == ["capacity.json", "capacity.md", "capacity.png"]
    loaded = json.loads(paths[0].read_text())
    assert loaded["capacity_rps"] == 130
    assert loaded["status"] == "found"
    assert len(loaded["levels"]) == 8
    assert loaded["at_capacity"]["p95_ms"] == 10
    markdown = paths[1].read_text()
    assert "**130.0 req/s** (found)" in markdown
    assert "| offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms |" in markdown
    rows = [line for line in markdown.splitlines() if re.match(r"\| \d", line)]
    assert len(rows) == 8
    assert "| 160.0 | 130.0 |" in markdown
    with Image.open(paths[2]) as image:
        assert image.format == "PNG"
        assert image.width > 400
        assert image.height > 300


def test_a_refused_capacity_is_reported_as_such(tmp_path: Path) -> None:
    result = search_capacity(
        ScriptedLevelRunner(500, generator_limit_rps=30), OBJECTIVE, SearchSettings(start_rps=20)
    )
    doc = capacity_document(result, "http://127.0.0.1:1", OBJECTIVE, {})
    json_path, md_path, _ = write_capacity_report(doc, tmp_path)
    assert json.loads(json_path.read_text())["capacity_rps"] is None
    assert "**no capacity claimed** (generator_limited)" in md_path.read_text()


def test_comparison_report_puts_both_sides_and_their_costs(tmp_path: Path) -> None:
    doc = comparison_document(
        ("cpu", document(100, "http://127.0.0.1:1"), 0.10),
        ("gpu", document(2000, "http://127.0.0.1:2"), 2.50),
    )
    json_path, md_path, png_path = write_comparison_report(doc, tmp_path)
    loaded = json.loads(json_path.read_text())
    cpu, gpu = loaded["sides"]
    assert (cpu["label"], gpu["label"]) == ("cpu", "gpu")
    assert cpu["cost_per_million"] == 0.10 / (cpu["capacity_rps"] * 3600) * 1e6
    assert gpu["cost_per_million"] == 2.50 / (gpu["capacity_rps"] * 3600) * 1e6
    markdown = md_path.read_text()
    assert "| | cpu | gpu |" in markdown
    assert f"| cost per million requests | {cpu['cost_per_million']:.3f} |" in markdown
    with Image.open(png_path) as image:
        assert image.format == "PNG"
        assert image.width > image.height
