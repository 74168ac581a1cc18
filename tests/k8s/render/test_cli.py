"""``mlcanary k8s``: exit codes, messages naming the field, the kustomize tree."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from mlcanary.k8s.cli import k8s_app
from mlcanary.k8s.render.output import KUSTOMIZATION

from .conftest import EXAMPLES

runner = CliRunner()


def _spec(tmp_path: Path, router: str = "istio", extra: str = "") -> Path:
    text = (EXAMPLES / "better-canary.yaml").read_text()
    path = tmp_path / "rollout.yaml"
    path.write_text(
        text.replace('type: local, address: "http://127.0.0.1:8080"', f"type: {router}") + extra
    )
    return path


def test_render_prints_valid_yaml_that_validate_accepts(tmp_path):
    result = runner.invoke(
        k8s_app,
        ["render", "-f", str(_spec(tmp_path)), "--gpu", "--namespace", "ml",
         "--image-repo", "registry.example:5000/ml/digits"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    images = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in documents
        if d["kind"] == "Deployment"
    }
    assert images["digits-v2"] == "registry.example:5000/ml/digits:v2-gpu"
    assert [d["kind"] for d in documents].count("VirtualService") == 1
    assert {d["metadata"].get("namespace") for d in documents} == {None, "ml"}
    manifest = tmp_path / "all.yaml"
    manifest.write_text(result.stdout)
    checked = runner.invoke(k8s_app, ["validate", str(manifest)])
    assert checked.exit_code == 0, checked.output
    assert f"{len(documents)} objects valid" in checked.output


def test_an_invalid_spec_exits_2_naming_the_field(tmp_path):
    path = _spec(tmp_path)
    path.write_text(path.read_text().replace("minSamples: 200", "minSamples: many"))
    result = runner.invoke(k8s_app, ["render", "-f", str(path)])
    assert result.exit_code == 2
    assert "spec.analysis.minSamples" in result.output
    assert result.stdout == ""


def test_a_local_router_and_bad_flags_exit_2(tmp_path):
    local = runner.invoke(k8s_app, ["render", "-f", str(_spec(tmp_path, router="local"))])
    assert local.exit_code == 2
    assert "spec.router.type" in local.output
    flags = runner.invoke(
        k8s_app,
        ["render", "-f", str(_spec(tmp_path)), "--replicas", "0", "--autoscale-metric", "memory"],
    )
    assert flags.exit_code == 2
    assert "--autoscale-metric: 'memory'" in flags.output
    repo = runner.invoke(
        k8s_app, ["render", "-f", str(_spec(tmp_path)), "--image-repo", "reg.example/d:v1"]
    )
    assert repo.exit_code == 2
    assert "--image-repo: 'reg.example/d:v1' has a tag" in repo.output
    missing = runner.invoke(k8s_app, ["render", "-f", str(tmp_path / "absent.yaml")])
    assert missing.exit_code == 2
    assert "(file): cannot read it: No such file or directory" in missing.output


def test_validate_exits_1_listing_every_problem(tmp_path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: two}\n"
        "---\napiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n---\n- a list\n"
    )
    result = runner.invoke(k8s_app, ["validate", str(manifest)])
    assert result.exit_code == 1
    assert "Deployment/web: spec.replicas: 'two' is not of type 'integer'" in result.output
    assert "Gizmo/g: apiVersion/kind: unknown kind Gizmo" in result.output
    assert "document 3: not a mapping" in result.output


def test_validate_exits_2_on_unreadable_input(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1,\n")
    assert runner.invoke(k8s_app, ["validate", str(broken)]).exit_code == 2
    assert runner.invoke(k8s_app, ["validate", str(tmp_path / "absent.yaml")]).exit_code == 2


def test_the_kustomize_tree_lists_every_file_it_wrote(tmp_path):
    out = tmp_path / "deploy"
    result = runner.invoke(
        k8s_app, ["render", "-f", str(_spec(tmp_path, router="gateway-api")), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    base = out / "base"
    kustomization = yaml.safe_load((base / KUSTOMIZATION).read_text())
    written = sorted(p.name for p in base.iterdir() if p.name != KUSTOMIZATION)
    assert sorted(kustomization["resources"]) == written
    assert len(written) == 17  # 15, plus the feedback ledger's Deployment and Service
    assert (
        kustomization["resources"][0] == "customresourcedefinition-modelrollouts.mlcanary.dev.yaml"
    )
    again = runner.invoke(
        k8s_app, ["render", "-f", str(_spec(tmp_path, router="gateway-api")), "--out", str(out)]
    )
    assert again.exit_code == 0, again.output  # rendering over its own tree is fine


def test_the_kustomize_tree_refuses_a_base_with_stale_files(tmp_path):
    out = tmp_path / "deploy"
    (out / "base").mkdir(parents=True)
    (out / "base" / "deployment-digits-v0.yaml").write_text("{}")
    result = runner.invoke(k8s_app, ["render", "-f", str(_spec(tmp_path)), "--out", str(out)])
    assert result.exit_code == 2
    assert "deployment-digits-v0.yaml" in result.output


def test_crd_prints_the_crd_alone():
    result = runner.invoke(k8s_app, ["crd"])
    assert result.exit_code == 0
    (document,) = yaml.safe_load_all(result.stdout)
    assert document["metadata"]["name"] == "modelrollouts.mlcanary.dev"
