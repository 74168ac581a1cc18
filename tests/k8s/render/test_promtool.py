"""The rendered alert rules through Prometheus's own tooling: `promtool check rules` parses every
expression, and `promtool test rules` (rules_test.yaml) shows the alerts fire on synthetic series
and stay quiet otherwise.

promtool comes with Debian's prometheus package, which `.ci/run` installs; outside CI a machine
without it skips these tests and says why, in CI its absence fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlcanary.k8s.render import render

from .conftest import ROUTERS, by_kind, example

PROMTOOL = shutil.which("promtool")
if PROMTOOL is None:
    if os.environ.get("CI") == "true":
        pytest.fail(
            "promtool is not installed; .ci/run installs it (prometheus package)", pytrace=False
        )
    pytest.skip("promtool is not installed (apt-get install prometheus)", allow_module_level=True)

RULES_TEST = Path(__file__).with_name("rules_test.yaml")


def _write_rules(directory: Path, *, gpu: bool, router: str = "gateway-api") -> int:
    """Write the rendering's rule groups to rules.yaml; how many rules they hold."""
    objects = render(example(router=router), gpu=gpu, namespace="default")
    (rule,) = by_kind(objects, "PrometheusRule")
    (directory / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    return sum(len(group["rules"]) for group in rule["spec"]["groups"])


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_promtool_checks_the_rules(tmp_path, router, gpu):
    count = _write_rules(tmp_path, gpu=gpu, router=router)
    result = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_the_alerts_fire_on_synthetic_series(tmp_path):
    _write_rules(tmp_path, gpu=True)
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    result = _promtool("test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_catches_a_rule_that_would_not_fire(tmp_path):
    """The unit tests are not vacuous: a latency threshold of 30 standard deviations fails them."""
    _write_rules(tmp_path, gpu=True)
    path = tmp_path / "rules.yaml"
    path.write_text(path.read_text().replace("+ 3 * stddev_over_time", "+ 30 * stddev_over_time"))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    result = _promtool("test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert result.returncode == 1
    assert "alertname: MlcanaryLatencyAnomaly" in result.stdout + result.stderr
