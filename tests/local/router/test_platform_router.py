"""The local platform runs the router: a router killed by pid is back at the next call."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from mlcanary.demo import EXAMPLES
from mlcanary.local import platform as platform_module
from mlcanary.local.platform import ROUTER, LocalPlatform
from mlcanary.local.router.state import RouterFiles
from mlcanary.rollout.routers.base import RouteTable
from mlcanary.rollout.spec import ModelRollout
from mlcanary.serving.launcher import free_port
from tests.local.router.conftest import split_table


@pytest.mark.integration
@pytest.mark.usefixtures("haproxy_installed")
def test_a_router_killed_by_pid_is_started_again_with_the_persisted_weights(
    backends: dict[str, str], tmp_path: Path
) -> None:
    platform = LocalPlatform(tmp_path / "state", say=lambda line: None)
    address = f"http://127.0.0.1:{free_port()}"
    # A table from an earlier start, so that no model service is needed to make the first one.
    RouterFiles.of_platform(platform.state_dir).save(
        RouteTable(split_table(backends, 100, 0).routes, 1)
    )
    try:
        router = platform.ensure_router(address, "digits", "v1")
        applied = router.set_routes(split_table(backends, 70, 30))
        first = platform.registry.get(ROUTER)
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)

        assert router.routes() == applied
        second = platform.registry.get(ROUTER)
        assert second is not None
        assert second.pid != first.pid
        with httpx.Client(base_url=address, trust_env=False) as client:
            picks = Counter(
                client.post("/predict", json={}).headers["x-mlcanary-version"] for _ in range(100)
            )
        assert picks == Counter({"v1": 70, "v2": 30})
    finally:
        platform.down()


def test_a_missing_haproxy_stops_the_platform_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform_module, "haproxy_binary", lambda: None)
    rollout = ModelRollout.model_validate(
        yaml.safe_load((EXAMPLES / "better-canary.yaml").read_text())
    )
    platform = LocalPlatform(tmp_path / "state")
    with pytest.raises(RuntimeError, match=r"^haproxy is not installed.*apt-get install haproxy$"):
        platform.controller(rollout)
    assert not platform.state_dir.exists()
