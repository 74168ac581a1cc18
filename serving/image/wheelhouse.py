"""The wheels an image installs, so that its build needs no network.

An image installs the project with the extras of its job (``mlcanary[serve]`` for a
scikit-learn version, ``[torch]``, ``[onnx]``, ``[controller]``), and the wheelhouse holds
exactly the wheels of that install: a scikit-learn image's build context carries no torch. The
versions are those of the environment that runs the build (``pip freeze`` as constraints), so
what was tested is what ships, with one exception: torch is the build the image's variant asks
for (`TorchBuild`), the CPU build for CPU images and a CUDA build for GPU images, of the same
release as here.

Wheels are kept in a cache directory shared by every build; pip fills it (``pip wheel``) from
whatever sources it is configured with, then resolves the image's install offline against it
(``pip install --dry-run --report``), with the dependencies another micro release of this
Python would add (the image's Python need not be this one), and the wheels of that resolution
are hard-linked into the build context with the constraints file, which the image's install
obeys too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = [
    "CPU_TORCH",
    "TorchBuild",
    "WheelhouseError",
    "build_wheelhouse",
    "cuda_torch",
    "project_root",
]


class WheelhouseError(RuntimeError):
    """pip could not produce a wheel for the project or one of its dependencies."""


@dataclass(frozen=True)
class TorchBuild:
    """One build of torch's release: the local label its wheels carry (``+cpu``, ``+cu128``;
    empty for the wheel on PyPI itself, which is a CUDA build on Linux), and the index that
    publishes it, tried when pip's own sources do not have it."""

    name: str
    label: str
    index: str | None

    def requirement(self, release: str) -> str:
        # "===" compares the version string exactly: "==2.13.0" would also take 2.13.0+cpu.
        return f"torch==={release}{self.label}"


_PYTORCH_INDEX = "https://download.pytorch.org/whl"
CPU_TORCH = TorchBuild("cpu", "+cpu", f"{_PYTORCH_INDEX}/cpu")


def cuda_torch(name: str) -> TorchBuild:
    """``pypi``: PyPI's own wheel of the release (torch 2.13: CUDA 13.0); ``cuNNN``: PyTorch's
    wheel for that CUDA version (cu126, cu128, cu130, as published for the release)."""
    if name == "pypi":
        return TorchBuild(name, "", None)
    if re.fullmatch(r"cu1[0-9]{2}", name):
        return TorchBuild(name, f"+{name}", f"{_PYTORCH_INDEX}/{name}")
    raise ValueError(f"--cuda {name!r} is not pypi or a CUDA build like cu128")


def project_root() -> Path:
    """The source checkout this package runs from; images are built from its files."""
    import mlcanary

    root = Path(mlcanary.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file() or not (root / "Dockerfile.gpu").is_file():
        raise WheelhouseError(
            f"building images needs the mlcanary source checkout (pyproject.toml and "
            f"Dockerfile.gpu); this installation at {root} has none"
        )
    return root


def _constraints(torch: TorchBuild | None) -> str:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = []
    for line in frozen.splitlines():
        if " @ " in line:
            continue
        name, _, version = line.partition("==")
        if name.lower() == "torch" and torch is not None:
            lines.append(torch.requirement(version.partition("+")[0]) + "\n")
        else:
            lines.append(line + "\n")
    return "".join(lines)


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    )


def _fill_cache(
    requirements: list[str], cache: Path, constraints: Path, torch: TorchBuild | None
) -> None:
    """Every wheel of ``requirements`` into the cache; the torch build's own index is added only
    when pip's configured sources lack it (it may not be reachable from here)."""
    fill = ("wheel", "--quiet", "--wheel-dir", str(cache), "--find-links", str(cache),
            "--constraint", str(constraints), *requirements)  # fmt: skip
    result = _pip(*fill)
    if result.returncode != 0 and torch is not None and torch.index is not None:
        result = _pip(*fill, "--extra-index-url", torch.index)
    if result.returncode != 0:
        named = " ".join(requirements)
        raise WheelhouseError(f"pip wheel {named} failed:\n{result.stderr[-3000:]}")


def _resolve(requirements: list[str], cache: Path, constraints: Path) -> list[dict[str, Any]]:
    """What an install of ``requirements`` takes, resolved offline from the cache, as pip's
    installation report lists it."""
    with tempfile.TemporaryDirectory(prefix="mlcanary-resolve-") as scratch:
        report = Path(scratch) / "report.json"
        result = _pip(
            "install", "--quiet", "--dry-run", "--ignore-installed", "--no-index",
            "--find-links", str(cache), "--constraint", str(constraints),
            "--report", str(report), *requirements,
        )  # fmt: skip
        if result.returncode != 0:
            named = " ".join(requirements)
            raise WheelhouseError(f"resolving {named} failed:\n{result.stderr[-3000:]}")
        installs: list[dict[str, Any]] = json.loads(report.read_text())["install"]
    return installs


def _for_other_micro_releases(installs: list[dict[str, Any]]) -> list[str]:
    """Dependencies the resolution here left out, whose markers hold on another micro release
    of this Python: the image's Python need not be this one (redis needs async-timeout before
    3.11.3, and Debian bookworm's Python is 3.11.2)."""
    resolved = {canonicalize_name(item["metadata"]["name"]) for item in installs}
    major, minor = sys.version_info[:2]
    others = [{"python_full_version": f"{major}.{minor}.{micro}"} for micro in range(30)]
    wanted = set()
    for item in installs:
        extras = ["", *item.get("requested_extras", [])]
        for line in item["metadata"].get("requires_dist", []):
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or canonicalize_name(requirement.name) in resolved:
                continue
            if any(marker.evaluate({**env, "extra": e}) for env in others for e in extras):
                requirement.marker = None
                wanted.add(str(requirement))
    return sorted(wanted)


def _wheel_files(installs: list[dict[str, Any]]) -> list[Path]:
    wheels = []
    for item in installs:
        url = urlsplit(item["download_info"]["url"])
        if url.scheme != "file" or not url.path.endswith(".whl"):
            raise WheelhouseError(f"{item['metadata']['name']} resolved to {url.geturl()}")
        wheels.append(Path(unquote(url.path)))
    return wheels


def build_wheelhouse(
    project: Path,
    cache: Path,
    destination: Path,
    *,
    extras: str,
    torch: TorchBuild | None = None,
) -> list[str]:
    """The wheels of ``mlcanary[extras]`` with ``torch``'s build into ``destination``, with
    ``constraints.txt``; returns the distributions' file names."""
    cache.mkdir(parents=True, exist_ok=True)
    destination.mkdir(parents=True)
    constraints = destination / "constraints.txt"
    constraints.write_text(_constraints(torch))
    for stale in cache.glob("mlcanary-*.whl"):
        stale.unlink()  # the project's own wheel is rebuilt from the current source every time
    _fill_cache([f"{project}[{extras}]"], cache, constraints, torch)
    requirements = [f"mlcanary[{extras}]"]
    while True:
        installs = _resolve(requirements, cache, constraints)
        missing = [r for r in _for_other_micro_releases(installs) if r not in requirements]
        if not missing:
            break
        _fill_cache(missing, cache, constraints, torch)
        requirements += missing
    wheels = _wheel_files(installs)
    for wheel in wheels:
        try:
            os.link(wheel, destination / wheel.name)
        except OSError:
            shutil.copy2(wheel, destination / wheel.name)
    return sorted(wheel.name for wheel in wheels)
