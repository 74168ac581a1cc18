from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlcanary.serving.settings import ServingSettings, SettingsError


def test_defaults_and_a_generated_secret(tmp_path: Path) -> None:
    env = {"MLCANARY_MODEL": "digits:v1", "MLCANARY_HOME": str(tmp_path)}
    settings = ServingSettings.from_env(env)
    assert settings.max_batch == 1024
    assert settings.ledger_path == tmp_path / "feedback-ledger.sqlite"
    assert (tmp_path / "feedback.key").stat().st_mode & 0o777 == 0o600
    assert ServingSettings.from_env(env).feedback_secret == settings.feedback_secret


def test_workers_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    env = {"MLCANARY_MODEL": "digits:v1", "MLCANARY_HOME": str(tmp_path)}
    secrets: list[bytes] = []
    threads = [
        threading.Thread(
            target=lambda: secrets.append(ServingSettings.from_env(env).feedback_secret)
        )
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
        ({"MLCANARY_MAX_BATCH": "many"}, "not an integer"),
        ({"MLCANARY_MAX_BATCH": "0"}, "outside"),
        ({"MLCANARY_FEEDBACK_SECRET": "short"}, "shorter than 16"),
    ],
)
def test_bad_settings_name_the_variable(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    env = {"MLCANARY_MODEL": "digits:v1", "MLCANARY_HOME": str(tmp_path), **extra}
    with pytest.raises(SettingsError, match=message):
        ServingSettings.from_env(env)
