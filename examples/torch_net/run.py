"""A PyTorch network of the user's own, registered both ways and served.

    make example-torch        # or: .venv/bin/python examples/torch_net/run.py

The network's class lives beside this script (``net.py``), not in mlcanary. It is trained on the
digits set as 1x8x8 images, then registered twice with ``mlcanary.models.register``:

* ``digit-net:export``, a ``torch.export`` program: the graph and its weights, served without
  the class;
* ``digit-net:weights``, a safetensors ``state_dict`` and the class by its import path
  (``net:Net``) with its arguments: the server imports ``net``, so it runs with this folder on
  ``PYTHONPATH``, as a server of a user's own package would have it installed.

Both are served with ``mlcanary serve`` and asked with the same images; their answers are
compared with the network's own, in memory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import numpy as np
import torch
from net import Net
from rich.console import Console
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mlcanary.models import register
from mlcanary.models.registry import ModelRef, ModelVersion, VersionNotFoundError, get_version
from mlcanary.serving.launcher import ServeOptions, free_port, running_server

HERE = Path(__file__).resolve().parent
SEED = 20261203
WAYS = {"export": {}, "weights": {"format": "safetensors", "config": {"channels": 16}}}


def train() -> tuple[Net, np.ndarray, np.ndarray, np.ndarray]:
    images, labels = load_digits(return_X_y=True)
    images = images.reshape(-1, 1, 8, 8).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.3, random_state=SEED, stratify=labels
    )
    torch.manual_seed(SEED)
    net = Net(channels=16)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss = torch.nn.CrossEntropyLoss()
    features, targets = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(30):
        order = torch.randperm(len(features))
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            loss(net(features[batch]), targets[batch]).backward()
            optimizer.step()
    return net.eval(), x_test, y_test, x_train[:20]


def register_both(console: Console) -> tuple[Net, np.ndarray, np.ndarray, list[ModelVersion]]:
    net, x_test, y_test, example = train()
    versions = []
    for way, options in WAYS.items():
        try:
            version = get_version(ModelRef("digit-net", way))
        except VersionNotFoundError:
            version = register(
                net,
                name="digit-net",
                version=way,
                task="classification",
                example=example,
                holdout=(x_test, y_test),
                **options,  # type: ignore[arg-type]
            )
        console.print(
            f"{version.ref}: {version.format}, holdout accuracy {version.holdout['accuracy']:.4f}"
            + (f", class {version.load_options['architecture']}" if way == "weights" else "")
        )
        versions.append(version)
    return net, x_test, y_test, versions


def main() -> int:
    console = Console()
    console.rule("train the network, register it as a program and as weights with its class")
    net, x_test, _, versions = register_both(console)
    with torch.inference_mode():
        expected = net(torch.from_numpy(x_test[:32])).argmax(dim=1).tolist()
    # The server imports the user's class (net:Net) from this folder.
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    agreed = True
    for version in versions:
        options = ServeOptions(
            model=str(version.ref), port=free_port(), device="cpu", env={"PYTHONPATH": path}
        )
        log = Path("reports/examples/torch_net") / f"serve-{version.ref.version}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with running_server(options, log) as url:
            answer = httpx.post(
                f"{url}/predict", json={"instances": x_test[:32].tolist()}, timeout=30
            ).json()
        same = answer["predictions"] == expected
        agreed = agreed and same
        verdict = "the same answers as in memory" if same else "DIFFERENT answers"
        console.print(f"{version.ref} served: {verdict}")
    return 0 if agreed else 1


if __name__ == "__main__":
    sys.exit(main())
