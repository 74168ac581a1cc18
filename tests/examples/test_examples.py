"""The examples run as a user runs them, each in a fresh model store: a regressor rolled out on
the local platform and judged on MAE, a tabular Pipeline, a network of the user's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlcanary.local.report import read_timeline
from mlcanary.rollout.status import Action, Phase
from tests.conftest import require

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, tmp_path: Path, *args: str, timeout_s: int) -> str:
    env = {
        **os.environ,
        "MLCANARY_HOME": str(tmp_path / "home"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


@pytest.mark.integration
def test_the_tabular_example_serves_records_with_the_models_labels(tmp_path: Path) -> None:
    out = _run("tabular/run.py", tmp_path, timeout_s=600)
    assert "wine:v1" in out
    assert "barolo" in out


@pytest.mark.integration
def test_the_torch_example_serves_the_network_both_ways(tmp_path: Path) -> None:
    out = _run("torch_net/run.py", tmp_path, timeout_s=600)
    assert "digit-net:export" in out
    assert "digit-net:weights" in out


@pytest.mark.e2e
def test_a_regressor_is_promoted_and_rolled_back_on_its_mae(tmp_path: Path) -> None:
    for binary in ("prometheus", "haproxy"):
        require(shutil.which(binary) is not None, f"{binary} is not installed")
    work = tmp_path / "work"
    _run("diabetes/run.py", tmp_path, "--fast", "--workdir", str(work), timeout_s=1500)
    samples = read_timeline(work / "timeline.jsonl")
    ends = {s.rollout: s for s in samples if s.action in (Action.PROMOTE, Action.ROLLBACK)}
    assert {name: s.phase for name, s in ends.items()} == {
        "diabetes-v2": Phase.SUCCEEDED,
        "diabetes-v3": Phase.ROLLED_BACK,
    }
    # Judged on the error the labels measured, not on latency or errors.
    assert "error" in ends["diabetes-v3"].message
    for name in ends:
        canary = [s.canary for s in samples if s.rollout == name]
        assert any(c.mae is not None for c in canary), name
    assert "MAE" in (work / "report.md").read_text()
