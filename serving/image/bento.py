"""The Bento of one model version, exported into an image's build context.

The Bento is BentoML's versioned unit of service plus model: ``bentoml list`` shows what was
packaged and when, and its exported form carries the model in the same directory layout as a
model store, so the image points ``BENTOML_HOME`` at it and the model loads with the same
digest checks as anywhere else. Code and dependencies come from the wheelhouse instead of the
Bento's own requirements, so that the image holds exactly the versions that were tested.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from pathlib import Path

import bentoml
from bentoml.exceptions import NotFound

from mlcanary.models.registry import ModelRef
from mlcanary.serving.entrypoint import SERVICE_IMPORT

__all__ = ["bento_tag", "export_bento"]


def bento_tag(ref: ModelRef) -> str:
    return f"mlcanary-{ref.name}:{ref.version}"


def export_bento(ref: ModelRef, destination: Path) -> str:
    """Build the Bento for ``ref`` (replacing an older build of it) and unpack it, readable
    by any user, into ``destination``; returns the Bento's tag."""
    tag = bento_tag(ref)
    with contextlib.suppress(NotFound):
        bentoml.bentos.delete(tag)
    with tempfile.TemporaryDirectory(prefix="mlcanary-bento-") as scratch:
        bento = bentoml.bentos.build(
            SERVICE_IMPORT,
            name=tag.partition(":")[0],
            version=ref.version,
            models=[str(ref)],
            labels={"mlcanary.model": ref.name, "mlcanary.version": ref.version},
            build_ctx=scratch,
        )
        archive = bentoml.bentos.export_bento(bento.tag, f"{scratch}/")
        with tarfile.open(archive) as tar:
            tar.extractall(destination, filter="data")
    # The model store writes its files for its owner only; the image runs as another user.
    for root, dirs, files in os.walk(destination):
        for name in dirs:
            Path(root, name).chmod(0o755)
        for name in files:
            Path(root, name).chmod(0o644)
    destination.chmod(0o755)
    return str(bento.tag)
