"""Locust's distributed mode on Kubernetes: the manifests validate against the real schemas and
fit together (workers reach the master's Service, both mount the locustfile's ConfigMap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import mlcanary.loadtest
from mlcanary.k8s.validation import validate_object

MANIFESTS = Path(mlcanary.loadtest.__file__).parent / "k8s"


def objects() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            found[f"{obj['kind']}/{obj['metadata']['name']}"] = obj
    return found


def test_the_expected_objects_are_there() -> None:
    assert sorted(objects()) == [
        "ConfigMap/mlcanary-locust",
        "Deployment/mlcanary-locust-worker",
        "Job/mlcanary-locust-master",
        "Service/mlcanary-locust-master",
    ]


@pytest.mark.parametrize("name", sorted(objects()))
def test_each_object_validates_against_its_schema(name: str) -> None:
    assert validate_object(objects()[name]) == []


def test_master_and_workers_fit_together() -> None:
    found = objects()
    service = found["Service/mlcanary-locust-master"]
    master = found["Job/mlcanary-locust-master"]["spec"]["template"]
    workers = found["Deployment/mlcanary-locust-worker"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= master["metadata"]["labels"].items()
    assert {p["port"] for p in service["spec"]["ports"]} >= {5557}
    (worker,) = workers["spec"]["containers"]
    assert (
        worker["command"][worker["command"].index("--master-host") + 1] == "mlcanary-locust-master"
    )
    assert "--master" in master["spec"]["containers"][0]["command"]
    config = found["ConfigMap/mlcanary-locust"]["data"]
    assert "LabeledTrafficUser" in config["locustfile.py"]
    settings = dict(
        line.split(" = ", 1) for line in config["locust.conf"].splitlines() if " = " in line
    )
    replicas = found["Deployment/mlcanary-locust-worker"]["spec"]["replicas"]
    assert int(settings["expect-workers"]) == replicas
    for template in (master, workers):
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert volumes["locustfile"]["configMap"]["name"] == "mlcanary-locust"
