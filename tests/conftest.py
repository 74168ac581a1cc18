"""Test-wide isolation: a private BentoML model store and mlcanary home for the whole session.

They are set before anything imports BentoML, which reads its home directory once.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mlcanary-tests-"))
os.environ["BENTOML_HOME"] = str(_SESSION_DIR / "bentoml")
os.environ["MLCANARY_HOME"] = str(_SESSION_DIR / "home")
os.environ.pop("MLCANARY_MODEL", None)
os.environ.pop("MLCANARY_FEEDBACK_SECRET", None)

from mlcanary.models.reference.train import train_reference_versions  # noqa: E402
from mlcanary.models.registry import ModelVersion  # noqa: E402
from mlcanary.serving.launcher import ServeOptions, free_port, running_server  # noqa: E402

StartServer = Callable[..., AbstractContextManager[str]]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def trained() -> dict[str, ModelVersion]:
    """Baseline (sklearn), better (torch CNN) and less accurate (sklearn) versions."""
    outcomes = train_reference_versions(["v1", "v2", "v3"])
    return {o.version.ref.version: o.version for o in outcomes}


def require(present: bool, reason: str) -> None:
    """Skip a test whose component is missing, saying why; in CI (``CI=true``), where `.ci/run`
    installs every component, fail it instead."""
    if present:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; .ci/run installs and starts it", pytrace=False)
    pytest.skip(reason)


@dataclass
class RedisServer:
    """A real redis-server on a loopback port, for the tests that share a ledger."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed (Debian package redis-server)")
    assert binary is not None
    port = free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
               "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                server.stop()
                pytest.fail("redis-server did not start", pytrace=False)
            time.sleep(0.05)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def start_server(session_dir: Path) -> StartServer:
    """Starts a real ``bentoml serve`` on a free loopback port; logs go to the session dir."""

    def start(model: str, workers: int = 1, **env: str) -> AbstractContextManager[str]:
        port = free_port()
        log = session_dir / f"serve-{model.replace(':', '-')}-{port}.log"
        options = ServeOptions(model=model, port=port, workers=workers, device="cpu", env=env)
        return running_server(options, log)

    return start


@pytest.fixture
def fresh_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private MLCANARY_HOME, so secrets and ledgers do not leak between tests."""
    monkeypatch.setenv("MLCANARY_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture(scope="session")
def user_models() -> dict[str, ModelVersion]:
    """A user's models, one of each kind, registered once: a tabular Pipeline over named numeric,
    string and categorical columns (skops), a scikit-learn classifier as ONNX, a network declared
    in the tests as a torch.export program and as safetensors with its class, and a regressor."""
    import numpy as np

    from mlcanary.models import register
    from tests.user_models import (
        numeric_classifier,
        regression_data,
        ridge,
        tabular_data,
        tabular_pipeline,
        tiny_net,
    )

    data = tabular_data()
    numeric = data.test.select_dtypes("number").to_numpy(np.float32)
    net, images = tiny_net()
    x, y, x_test, y_test = regression_data()
    return {
        "tabular": register(
            tabular_pipeline(data),
            name="wine",
            version="served-pipeline",
            example=data.test.head(10),
            holdout=(data.test, data.test_y),
        ),
        "onnx": register(
            numeric_classifier(data),
            name="wine",
            version="served-onnx",
            format="onnx",
            example=numeric[:10],
            holdout=(numeric, data.test_y),
        ),
        "export": register(
            net, name="tiny", version="served-export", task="classification", example=images
        ),
        "weights": register(
            net,
            name="tiny",
            version="served-weights",
            task="classification",
            format="safetensors",
            config={"hidden": 16},
            example=images,
        ),
        "regression": register(
            ridge(x, y),
            name="diabetes",
            version="served-ridge",
            example=x[:10],
            holdout=(x_test, y_test),
        ),
    }
