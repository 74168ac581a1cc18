"""Registering a user's own models, from Python and from files made elsewhere, in every format."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import torch

from mlcanary.models import RegistrationError, import_artifact, register
from mlcanary.models.digest import ArtifactIntegrityError
from mlcanary.models.formats.base import FormatError, UntrustedArtifactError
from mlcanary.models.registry import ModelRef, VersionExistsError, load_predictor
from mlcanary.models.schema import Column, ColumnsSchema, TensorSchema, schema_from_example
from mlcanary.models.task import ClassificationOutput, RegressionOutput
from tests.user_models import (
    TinyNet,
    numeric_classifier,
    regression_data,
    ridge,
    tabular_data,
    tabular_pipeline,
    tiny_net,
)


def _predict(ref: str, rows: Any) -> list[Any]:
    version, predictor = load_predictor(ModelRef.parse(ref), "cpu")
    return predictor.predict(version.schema.to_batch(rows)).values


def test_a_dataframe_example_records_names_and_dtypes_strings_and_categories_included() -> None:
    frame = pd.DataFrame(
        {
            "tenure": np.array([3, 14], dtype=np.int64),
            "spend": np.array([12.5, 80.0], dtype=np.float32),
            "plan": ["basic", "pro"],
            "region": pd.Categorical(["north", "south"], categories=["north", "south", "east"]),
            "active": [True, False],
        }
    )
    assert schema_from_example(frame) == ColumnsSchema(
        columns=(
            Column(name="tenure", dtype="int64"),
            Column(name="spend", dtype="float32"),
            Column(name="plan", dtype="string"),
            Column(name="region", dtype="category", categories=("north", "south", "east")),
            Column(name="active", dtype="bool"),
        )
    )
    assert schema_from_example(np.zeros((5, 3, 32, 32), dtype=np.float32)) == TensorSchema(
        shape=(3, 32, 32), dtype="float32"
    )


def test_a_tabular_pipeline_with_string_columns_registers_from_its_dataframe() -> None:
    data = tabular_data()
    model = tabular_pipeline(data)
    version = register(
        model,
        name="wine-tabular",
        version="v1",
        example=data.test.head(10),
        holdout=(data.test, data.test_y),
    )
    assert version.format == "skops"
    assert isinstance(version.schema, ColumnsSchema)
    by_name = {c.name: c for c in version.schema.columns}
    assert by_name["strength"].dtype == "string"
    assert by_name["cellar"].categories == ("east", "north", "south")
    assert version.output == ClassificationOutput(
        classes=("barbera", "barolo", "grignolino"), probabilities=True
    )
    expected = float(np.mean(model.predict(data.test) == data.test_y))
    assert version.holdout["accuracy"] == pytest.approx(expected)
    assert (
        _predict("wine-tabular:v1", data.test.head(5)) == model.predict(data.test.head(5)).tolist()
    )


def test_a_skops_file_is_imported_and_an_untrusted_type_refused_by_name(tmp_path: Path) -> None:
    data = tabular_data()
    path = tmp_path / "wine.skops"
    sio.dump(tabular_pipeline(data), path)
    version = import_artifact(
        path,
        name="wine-import",
        version="v1",
        example=data.test.head(5),
        holdout=(data.test, data.test_y),
    )
    assert version.holdout["accuracy"] > 0.8
    smuggling = tmp_path / "smuggling.skops"
    sio.dump({"model": tabular_pipeline(data), "extra": Smuggled()}, smuggling)
    with pytest.raises(
        UntrustedArtifactError, match=r"tests\.models\.test_register\.Smuggled.*--trust"
    ):
        import_artifact(smuggling, name="wine-import", version="v2", example=data.test.head(5))


class Smuggled:
    """Stands for a class an attacker would like a loader to instantiate."""


def test_an_onnx_graph_from_skl2onnx_is_served_by_onnxruntime(tmp_path: Path) -> None:
    from skl2onnx import to_onnx

    data = tabular_data()
    model = numeric_classifier(data)
    numeric = data.test.select_dtypes("number").to_numpy(np.float32)
    graph = to_onnx(model, numeric[:1], options={"zipmap": False})
    path = tmp_path / "wine.onnx"
    path.write_bytes(graph.SerializeToString())
    version = import_artifact(path, name="wine-onnx", version="v1", holdout=(numeric, data.test_y))
    assert (version.format, version.framework) == ("onnx", "onnx")
    assert version.schema == TensorSchema(shape=(13,), dtype="float32")
    assert version.output.task == "classification"
    assert _predict("wine-onnx:v1", numeric) == model.predict(numeric).tolist()


def test_a_scikit_learn_estimator_can_be_registered_as_onnx() -> None:
    data = tabular_data()
    model = numeric_classifier(data)
    numeric = data.test.select_dtypes("number").to_numpy(np.float64)
    version = register(model, name="wine-onnx", version="v2", format="onnx", example=numeric[:5])
    assert version.schema.dtype == "float32"  # type: ignore[union-attr]
    assert _predict("wine-onnx:v2", numeric) == model.predict(numeric.astype(np.float32)).tolist()


@pytest.mark.parametrize(
    ("version", "options"),
    [
        ("export", {}),
        ("weights", {"format": "safetensors", "config": {"hidden": 16}}),
    ],
)
def test_a_users_network_registers_both_ways_and_answers_as_it_does_in_memory(
    version: str, options: dict[str, Any]
) -> None:
    net, images = tiny_net()
    registered = register(
        net, name="tiny", version=version, task="classification", example=images, **options
    )
    assert registered.schema == TensorSchema(shape=(2, 4, 4), dtype="float32")
    assert registered.output == ClassificationOutput(classes=(0, 1, 2), probabilities=True)
    if version == "weights":
        assert registered.load_options["architecture"] == "tests.user_models:TinyNet"
    with torch.inference_mode():
        expected = net(torch.from_numpy(images)).argmax(dim=1).tolist()
    assert _predict(f"tiny:{version}", images) == expected
    assert _predict(f"tiny:{version}", images[:1]) == expected[:1]  # the batch stays free


def test_a_network_needs_its_task_stated() -> None:
    net, images = tiny_net()
    with pytest.raises(RegistrationError, match="state task="):
        register(net, name="tiny", version="untold", example=images)


def test_a_pt2_archive_is_imported_without_unpickling(tmp_path: Path) -> None:
    net, images = tiny_net()
    program = torch.export.export(
        net, (torch.from_numpy(images[:2]),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    path = tmp_path / "tiny.pt2"
    torch.export.save(program, path)
    version = import_artifact(path, name="tiny", version="pt2", task="classification")
    assert version.format == "torch-export"
    assert version.schema == TensorSchema(shape=(2, 4, 4), dtype="float32")
    with torch.inference_mode():
        expected = net(torch.from_numpy(images)).argmax(dim=1).tolist()
    assert _predict("tiny:pt2", images) == expected


class _Payload:
    """A pickle that runs a command when it is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pt2_archive_that_would_need_unpickling_is_refused_and_runs_nothing(
    tmp_path: Path,
) -> None:
    net, images = tiny_net()
    program = torch.export.export(
        net, (torch.from_numpy(images[:2]),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    clean = tmp_path / "tiny.pt2"
    torch.export.save(program, clean)
    marker = tmp_path / "executed"
    crafted = tmp_path / "crafted.pt2"
    with zipfile.ZipFile(clean) as source, zipfile.ZipFile(crafted, "w") as target:
        root = source.namelist()[0].split("/", 1)[0]
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr(f"{root}/data/constants/opaque_obj_0", pickle.dumps(_Payload(marker)))
    with pytest.raises(FormatError, match=r"opaque_obj_0.*not read"):
        import_artifact(crafted, name="tiny", version="crafted", task="classification")
    assert not marker.exists()
    # The sample inputs, which torch.export.load unpickles in full, are never read.
    with zipfile.ZipFile(clean) as source:
        entries = {item.filename: source.read(item) for item in source.infolist()}
    poisoned = tmp_path / "poisoned.pt2"
    with zipfile.ZipFile(poisoned, "w") as target:
        for name, content in entries.items():
            sample = name.endswith("data/sample_inputs/model.pt")
            target.writestr(name, pickle.dumps(_Payload(marker)) if sample else content)
    import_artifact(poisoned, name="tiny", version="poisoned", task="classification")
    assert not marker.exists()


def test_a_safetensors_state_dict_is_imported_with_its_class(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    net, images = tiny_net()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    version = import_artifact(
        path,
        name="tiny",
        version="imported-weights",
        task="classification",
        example=images,
        architecture="tests.user_models:TinyNet",
        config={"hidden": 16},
    )
    assert version.format == "safetensors"
    with pytest.raises(FormatError, match=r"do not fit tests\.user_models:TinyNet"):
        import_artifact(
            path,
            name="tiny",
            version="wrong-config",
            task="classification",
            example=images,
            architecture="tests.user_models:TinyNet",
            config={"hidden": 32},
        )


def test_a_regressor_records_mae_and_rmse_on_its_holdout() -> None:
    x, y, x_test, y_test = regression_data()
    model = ridge(x, y)
    version = register(
        model, name="diabetes-ridge", version="v1", example=x[:10], holdout=(x_test, y_test)
    )
    assert version.output == RegressionOutput(outputs=1)
    errors = model.predict(x_test) - y_test
    assert version.holdout["mae"] == pytest.approx(float(np.mean(np.abs(errors))))
    assert version.holdout["rmse"] == pytest.approx(float(np.sqrt(np.mean(errors**2))))
    assert _predict("diabetes-ridge:v1", x_test[:3]) == pytest.approx(
        model.predict(x_test[:3]).tolist()
    )


def test_versions_are_immutable_and_a_tampered_artifact_is_refused(tmp_path: Path) -> None:
    x, y, _, _ = regression_data()
    version = register(ridge(x, y), name="diabetes-ridge", version="tamper", example=x[:5])
    with pytest.raises(VersionExistsError, match="already registered"):
        register(ridge(x, y), name="diabetes-ridge", version="tamper", example=x[:5])
    data = bytearray(version.artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    version.artifact.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=str(version.artifact)):
        load_predictor(version.ref)


def test_classes_must_match_what_the_model_gives() -> None:
    net, images = tiny_net()
    with pytest.raises(RegistrationError, match="classes has 2 labels; the model has 3"):
        register(
            net,
            name="tiny",
            version="bad-classes",
            task="classification",
            example=images,
            classes=["a", "b"],
        )


def test_a_user_class_defined_in_a_script_is_refused_for_safetensors() -> None:
    class Local(TinyNet):
        pass

    torch.manual_seed(0)
    with pytest.raises(FormatError, match="importable module"):
        register(
            Local(),
            name="tiny",
            version="local-class",
            task="classification",
            format="safetensors",
            example=tiny_net()[1],
        )
