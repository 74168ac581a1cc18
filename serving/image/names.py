"""How images are named: the tag `mlcanary build` gives, the name it pushes.

One rule for the build and for `mlcanary k8s render`, so that what was built is what a cluster
runs. An image holds one version and is tagged ``mlcanary/MODEL:VERSION`` (``VERSION-gpu`` for
the GPU variant); ``--push REGISTRY/REPO`` pushes it as ``REGISTRY/REPO:VERSION[-gpu]``. The
controller's image (``mlcanary build --controller``) is ``mlcanary/controller:RELEASE``, the
release of mlcanary it holds; pushed to a version's repository it is
``REGISTRY/REPO:controller-RELEASE``, the name to give ``mlcanary k8s render
--controller-image``. Kept apart from the builder because that loads BentoML, seconds of
start-up rendering has no use for.
"""

from __future__ import annotations

import re

from mlcanary import __version__

__all__ = [
    "CONTROLLER_REPOSITORY",
    "controller_image",
    "controller_tag",
    "default_repository",
    "has_tag",
    "repository_problem",
    "tag_problem",
    "version_image",
    "version_tag",
]

# The repository grammar of image references (the distribution project's): lowercase path
# components, a first component that is a registry host only with a dot, a port, or localhost.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]+)?|[A-Za-z0-9-]+:[0-9]+"
_REPOSITORY = re.compile(rf"(?:(?:{_HOST})/)?{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"\w[\w.-]{0,127}")


CONTROLLER_REPOSITORY = "mlcanary/controller"


def controller_tag(*, pushed: bool) -> str:
    """The controller image's tag: the release, prefixed in a repository shared with versions."""
    return f"controller-{__version__}" if pushed else __version__


def controller_image(repository: str | None = None) -> str:
    if repository is None:
        return f"{CONTROLLER_REPOSITORY}:{controller_tag(pushed=False)}"
    return f"{repository}:{controller_tag(pushed=True)}"


def default_repository(model: str) -> str:
    return f"mlcanary/{model}"


def version_tag(version: str, *, gpu: bool) -> str:
    return f"{version}-gpu" if gpu else version


def has_tag(reference: str) -> bool:
    """A colon after the last slash is a tag; one before it belongs to a registry's port."""
    return ":" in reference.rpartition("/")[2]


def repository_problem(repository: str) -> str | None:
    """Why ``repository`` cannot name images, or None. A tag is refused: each version has its
    own."""
    if has_tag(repository):
        return f"{repository!r} has a tag; give the repository alone, like REGISTRY/REPO"
    if not _REPOSITORY.fullmatch(repository):
        return f"{repository!r} is not an image repository like REGISTRY/REPO"
    return None


def tag_problem(tag: str) -> str | None:
    return None if _TAG.fullmatch(tag) else f"{tag!r} is not an image tag"


def version_image(model: str, version: str, *, gpu: bool, repository: str | None = None) -> str:
    return f"{repository or default_repository(model)}:{version_tag(version, gpu=gpu)}"
