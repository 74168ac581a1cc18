"""Every spec problem is found before anything starts: exit 2, one short message naming the field
or the line, no traceback, and no process left behind. Run through the real command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml

from mlcanary.demo import EXAMPLES

Writer = Callable[[Path], None]


def _spec(**changes: object) -> Writer:
    def write(path: Path) -> None:
        document = yaml.safe_load((EXAMPLES / "better-canary.yaml").read_text())
        for key, value in changes.items():
            section, _, field = key.partition("__")
            if field:
                document["spec"][section][field] = value
            else:
                document["spec"][section] = value
        path.write_text(yaml.safe_dump(document))

    return write


def _bytes(data: bytes) -> Writer:
    def write(path: Path) -> None:
        path.write_bytes(data)

    return write


def _bomb(path: Path) -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    pairs = zip("abcdefgh", "bcdefghi", strict=True)
    lines += [f"{x}: &{x} [{', '.join([f'*{y}'] * 9)}]" for y, x in pairs]
    path.write_text("\n".join(lines) + "\n")


def _large(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)


CASES = {
    "not-utf8": (_bytes(b"apiVersion: \xff\xfe\x00 broken"), "(file): not UTF-8"),
    "deep": (_bytes(("a: " + "[" * 5000 + "]" * 5000).encode()), "nested deeper than"),
    "bomb": (_bomb, "YAML aliases (*name) are not accepted"),
    "50MB": (_large, "(file): larger than"),
    "remote-router": (
        _spec(router__address="http://192.0.2.1:8080"),
        "spec.router.address: 'http://192.0.2.1:8080' is not on loopback",
    ),
    "portless-router": (
        _spec(router__address="http://127.0.0.1"),
        "spec.router.address: 'http://127.0.0.1' has no port",
    ),
    "remote-prometheus": (
        _spec(metrics__address="http://10.0.0.5:9090"),
        "spec.metrics.address: 'http://10.0.0.5:9090' is not on loopback",
    ),
    "unknown-field": (_spec(surprise=1), "spec.surprise: Extra inputs are not permitted"),
    "bad-steps": (_spec(steps=[50, 10]), "spec.steps: must be strictly increasing"),
    "missing-version": (_spec(canary={"version": "v404"}), "spec.canary.version"),
    "notification-secret": (
        _spec(
            notifications=[
                {"type": "slack", "urlFrom": {"secretKeyRef": {"name": "a", "key": "b"}}}
            ]
        ),
        "spec.notifications[0].urlFrom.secretKeyRef: a Secret is read in a cluster only",
    ),
    "notification-variable-unset": (
        _spec(notifications=[{"type": "slack", "urlFrom": {"env": "MLCANARY_TEST_UNSET_URL"}}]),
        "spec.notifications[0].urlFrom.env: urlFrom.env names MLCANARY_TEST_UNSET_URL, which is "
        "not set",
    ),
    "wrong-task": (
        _spec(analysis__accuracy=None, analysis__error={"metric": "mae"}),
        "spec.analysis.error: the model is a classifier",
    ),
}


def _running_under(state: Path) -> list[str]:
    """Processes whose command line names the state folder: what the platform would start."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if str(state) in command and "pytest" not in command:
            found.append(command)
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_spec_is_refused_before_anything_starts(
    trained, tmp_path: Path, case: str
) -> None:
    write, expected = CASES[case]
    spec = tmp_path / "rollout.yaml"
    write(spec)
    state = tmp_path / "state"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlcanary.cli",
            "rollout",
            "run",
            "-f",
            str(spec),
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()
    assert 1 <= len(message) <= 3, message
    assert "Traceback" not in result.stderr + result.stdout
    assert expected in result.stderr.replace("\n", " ")
    assert _running_under(state) == []
    status = subprocess.run(
        [sys.executable, "-m", "mlcanary.cli", "platform", "status", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert status.stdout.strip() in ("", "nothing running")
