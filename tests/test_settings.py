from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlcanary.settings import ServingSettings, SettingsError


def test_defaults_and_a_generated_secret(tmp_path: Path) -> None:
    env = {"MLCANARY_MODEL": "digits:v1", "MLCANARY_HOME": str(tmp_path)}
    settings = ServingSettings.from_env(env)
    assert settings.max_batch == 1024
    assert settings.ledger_path == tmp_path / "feedback-ledger.sqlite"
    key = settings.feedback_key  # created on first use, once per machine
    assert (tmp_path / "feedback.key").stat().st_mode & 0o777 == 0o600
    assert len(key) == 64
    assert ServingSettings.from_env(env).feedback_key == settings.feedback_key


def test_workers_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    env = {"MLCANARY_MODEL": "digits:v1", "MLCANARY_HOME": str(tmp_path)}
    secrets: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: secrets.append(ServingSettings.from_env(env).feedback_key))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(secrets)) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"MLCANARY_MODEL": ""}, "MLCANARY_MODEL is not set"),
        ({"MLCANARY_MAX_BATCH": "many"}, "MLCANARY_MAX_BATCH='many': .*valid integer"),
        ({"MLCANARY_MAX_BATCH": "0"}, "MLCANARY_MAX_BATCH='0': .*greater than or equal to 1"),
        (
            {"MLCANARY_FEEDBACK_SECRET": "short"},
            "MLCANARY_FEEDBACK_SECRET \\(hidden\\): .*shorter than 16",
        ),
    ],
)
def test_bad_settings_name_the_variable(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    env = {"MLCANARY_MODEL": "digits:v1", "MLCANARY_HOME": str(tmp_path), **extra}
    with pytest.raises(SettingsError, match=message):
        ServingSettings.from_env(env)
