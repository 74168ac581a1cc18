from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlcanary.cli import app
from mlcanary.demo import EXAMPLES
from mlcanary.local.file_store import FileStatusStore
from mlcanary.rollout.status import Phase, RolloutStatus

runner = CliRunner()


def _spec(tmp_path: Path, **changes: object) -> Path:
    document = yaml.safe_load((EXAMPLES / "better-canary.yaml").read_text())
    document["spec"].update(changes)
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": [50, 10]}, "spec.steps"),
        ({"steps": [10, 90]}, "spec.steps"),
        ({"router": {"type": "nginx"}}, "spec.router.type"),
        (
            {"router": {"type": "istio"}},
            "spec.router.type: 'istio' routes in a cluster; on this machine use local",
        ),
        ({"canary": {"version": "v404"}}, "spec.canary.version"),
        ({"surprise": 1}, "spec.surprise"),
    ],
)
def test_a_bad_spec_exits_2_naming_the_field(trained, tmp_path, changes, message) -> None:
    result = runner.invoke(
        app, ["rollout", "run", "-f", str(_spec(tmp_path, **changes)), "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "processes").exists(), "nothing may start for an invalid spec"


def test_status_and_commands(tmp_path: Path) -> None:
    status = RolloutStatus(
        phase=Phase.PROGRESSING, message="holding", pending_labels={"v1": 1200, "v2": 130}
    )
    FileStatusStore(tmp_path / "rollouts").save("digits-v2", status, None)
    shown = runner.invoke(app, ["rollout", "status", "--json", "--state-dir", str(tmp_path)])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["digits-v2"]["phase"] == "Progressing"
    plain = runner.invoke(app, ["rollout", "status", "--state-dir", str(tmp_path)])
    assert "labels pending this step: v1 1,200, v2 130" in plain.output
    paused = runner.invoke(app, ["rollout", "pause", "digits-v2", "--state-dir", str(tmp_path)])
    assert paused.exit_code == 0
    request = FileStatusStore(tmp_path / "rollouts").take_command("digits-v2")
    assert request is not None
    assert request.word == "pause"
    missing = runner.invoke(app, ["rollout", "abort", "nope", "--state-dir", str(tmp_path)])
    assert missing.exit_code == 2
    assert "no rollout named nope" in missing.output


def _capacity_report(tmp_path: Path, capacity_rps: float | None) -> Path:
    path = tmp_path / "capacity.json"
    path.write_text(json.dumps({"status": "found", "capacity_rps": capacity_rps}))
    return path


def test_capacity_flags_are_checked_before_anything_starts(trained, tmp_path: Path) -> None:
    spec = str(_spec(tmp_path))
    report = str(_capacity_report(tmp_path, 40.0))
    base = ["rollout", "run", "-f", spec, "--state-dir", str(tmp_path), "--capacity"]
    without_rate = runner.invoke(app, [*base, report])
    assert without_rate.exit_code == 2
    assert "--current-rps" in without_rate.output
    no_claim = runner.invoke(
        app, [*base, str(_capacity_report(tmp_path, None)), "--current-rps", "100"]
    )
    assert no_claim.exit_code == 2
    assert "no capacity claimed" in no_claim.output
    assert not (tmp_path / "processes").exists(), "nothing may start for bad capacity flags"


def test_each_step_beyond_the_canarys_capacity_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlcanary.local.cli import _warn_about_capacity
    from mlcanary.rollout.spec import load_spec

    rollout = load_spec((EXAMPLES / "better-canary.yaml").read_text())
    _warn_about_capacity(rollout, _capacity_report(tmp_path, 40.0), 300.0)
    printed = " ".join(capsys.readouterr().out.split())
    assert printed.count("capacity warning:") == 1  # 10% of 300 fits in 40 req/s; 100% does not
    assert "100%" in printed


@pytest.mark.parametrize("command", ["rollout", "demo"])
def test_a_missing_haproxy_is_named_in_one_line_before_anything_starts(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    from mlcanary.local import platform
    from mlcanary.local.router import haproxy

    monkeypatch.setattr(platform, "haproxy_binary", lambda: None)
    monkeypatch.setattr(haproxy, "haproxy_binary", lambda: None)
    args = {
        "rollout": ["rollout", "run", "-f", str(_spec(tmp_path)), "--state-dir", str(tmp_path)],
        "demo": ["demo", "--workdir", str(tmp_path)],
    }[command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "haproxy is not installed" in lines[0]
    assert lines[0].endswith("apt-get install haproxy")
    assert not (tmp_path / "processes").exists()
