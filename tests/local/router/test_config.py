"""HAProxy's configuration as rendered, checked by HAProxy itself (``haproxy -c``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mlcanary.local.router.haproxy import RouterSettings, render_config
from mlcanary.rollout.routers import Route, RouteTable, RouteTableError

TABLE = RouteTable(
    (Route("v1", "http://127.0.0.1:3001", 90), Route("v2.1", "http://[::1]:3002", 10)), 4
)


@pytest.mark.usefixtures("haproxy_installed")
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_haproxy_accepts_the_rendered_configuration(tmp_path: Path, host: str) -> None:
    config = tmp_path / "haproxy.cfg"
    settings = RouterSettings(host, 8080, upstream_timeout_s=0.25)
    config.write_text(render_config(TABLE, settings, str(tmp_path / "admin.sock")))
    haproxy = shutil.which("haproxy")
    assert haproxy is not None
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert "server v2.1 [::1]:3002 weight 10 " in text
    assert "timeout server 250ms" in text
    assert "generation 4" in text


def test_a_route_haproxy_cannot_reach_is_named() -> None:
    table = RouteTable((Route("v1", "http://127.0.0.1:3001", 100), Route("v2", "svc", 0)))
    with pytest.raises(RouteTableError) as caught:
        render_config(table, RouterSettings("127.0.0.1", 8080), "admin.sock")
    assert caught.value.field == "routes[1].url"
