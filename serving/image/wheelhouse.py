"""The project and its dependencies as wheels, so that an image build needs no network.

The versions are those of the environment that runs the build (``pip freeze`` as constraints):
what was tested is what ships, torch included, whose build (CPU or CUDA) is the one installed
here. Wheels are kept in a cache directory and hard-linked into each build context with the
constraints file, which the image's install obeys too: older wheels left in the cache are
never picked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["WheelhouseError", "build_wheelhouse", "project_root"]


class WheelhouseError(RuntimeError):
    """pip could not produce a wheel for the project or one of its dependencies."""


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


def _constraints() -> str:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "".join(line + "\n" for line in frozen.splitlines() if " @ " not in line)


def build_wheelhouse(project: Path, cache: Path, destination: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    constraints = cache / "constraints.txt"
    constraints.write_text(_constraints())
    for stale in cache.glob("mlcanary-*.whl"):
        stale.unlink()  # the project's own wheel is rebuilt from the current source every time
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
            "--wheel-dir", str(cache), "--find-links", str(cache),
            "--constraint", str(constraints), str(project),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise WheelhouseError(f"pip wheel failed:\n{result.stderr[-3000:]}")
    destination.mkdir(parents=True)
    shutil.copy2(constraints, destination / constraints.name)
    for wheel in cache.glob("*.whl"):
        try:
            os.link(wheel, destination / wheel.name)
        except OSError:
            shutil.copy2(wheel, destination / wheel.name)
