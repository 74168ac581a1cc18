"""``pip install mlcanary[controller]`` runs the controller, without torch or BentoML.

A fresh virtualenv gets the project with that extra alone, from the package index pip is
configured with (its cache and local wheels included), and its ``mlcanary controller --once``
moves a rollout's traffic on the API double.
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

from mlcanary.serving.launcher import free_port
from tests.k8s.cluster import Cluster, rollout_document
from tests.k8s.controller_process import kubeconfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def controller_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The virtualenv's bin folder."""
    home = tmp_path_factory.mktemp("controller-extra") / "venv"
    venv.create(home, with_pip=True)
    installed = subprocess.run(
        [home / "bin" / "python", "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", f"{ROOT}[controller]"],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    return home / "bin"


def test_the_controller_extra_holds_no_serving_stack(controller_env: Path) -> None:
    probe = (
        "import importlib.util, json; print(json.dumps({name: importlib.util.find_spec(name) "
        "is not None for name in ('torch', 'bentoml', 'sklearn', 'locust', 'matplotlib', "
        "'kubernetes')}))"
    )
    found = subprocess.run(
        [controller_env / "python", "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == (
        '{"torch": false, "bentoml": false, "sklearn": false, "locust": false, '
        '"matplotlib": false, "kubernetes": true}'
    )


def test_mlcanary_controller_runs_from_it(
    controller_env: Path, cluster: Cluster, tmp_path: Path
) -> None:
    document = rollout_document("gateway-api")
    document["spec"]["metrics"]["address"] = f"http://127.0.0.1:{free_port()}"
    cluster.install(document)
    config = kubeconfig(tmp_path / "config", cluster.double.url)
    result = subprocess.run(
        [controller_env / "mlcanary", "controller", "--namespace", "serving",
         "--kubeconfig", str(config), "--once", "--drain", "0"],
        capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "canary  10%" in result.stdout
    assert cluster.httproute_weights() == {"v1": 90, "v2": 10}


def test_a_command_of_another_extra_names_the_extra_it_needs(controller_env: Path) -> None:
    listing = subprocess.run(
        [controller_env / "mlcanary", "--help"], capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0, listing.stderr
    build = subprocess.run(
        [controller_env / "mlcanary", "build", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 1
    assert "comes with the 'serve' extra: pip install 'mlcanary[serve]'" in " ".join(
        build.stderr.replace("│", " ").split()
    )
