"""The docker command line, for the few things an image build needs.

The CLI rather than a Python SDK: it is what users have, it reads their configuration
(contexts, credentials for ``push``), and BuildKit is reached through it without buildx.
``MLCANARY_DOCKER`` names the binary; the default prefers the distribution's client at
/usr/bin/docker, which builds with the daemon's own BuildKit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from mlcanary.settings import BuildSettings

__all__ = ["DockerCli", "DockerError", "DockerUnavailableError"]

_DEFAULT = "/usr/bin/docker"


class DockerError(RuntimeError):
    """A docker command failed; the message carries the end of its output."""


class DockerUnavailableError(DockerError):
    """No docker client, or no daemon answering it."""


class DockerCli:
    def __init__(self, binary: str | None = None) -> None:
        chosen = binary or BuildSettings.from_env().docker
        if chosen is None:
            chosen = _DEFAULT if Path(_DEFAULT).exists() else (shutil.which("docker") or "docker")
        self.binary = chosen
        self._env = {**os.environ, "DOCKER_BUILDKIT": "1"}

    def _run(self, *args: str, timeout_s: float = 60) -> str:
        try:
            result = subprocess.run(
                [self.binary, *args],
                capture_output=True,
                text=True,
                env=self._env,
                timeout=timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise DockerUnavailableError(
                f"docker client {self.binary!r} not found (apt-get install docker.io)"
            ) from None
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise DockerError(f"docker {args[0]} failed:\n{output[-3000:]}")
        return result.stdout.strip()

    def check(self) -> None:
        try:
            self._run("version", "--format", "{{.Server.Version}}", timeout_s=20)
        except DockerUnavailableError:
            raise
        except DockerError as exc:
            raise DockerUnavailableError(
                f"the docker daemon does not answer ({exc}); start it, e.g. "
                "scripts/docker/start-dockerd.sh"
            ) from None

    def build(
        self,
        context: Path,
        dockerfile: Path,
        build_args: Mapping[str, str],
        timeout_s: float,
        *,
        target: str | None = None,
    ) -> str:
        """Build without tagging and return the image id: a failed build leaves no tag."""
        iidfile = context.parent / f"{context.name}.iid"
        args = [f"--build-arg={key}={value}" for key, value in build_args.items()]
        if target is not None:
            args.append(f"--target={target}")
        self._run(
            "build", "--network", "host", "--file", str(dockerfile), "--iidfile", str(iidfile),
            *args, str(context),
            timeout_s=timeout_s,
        )  # fmt: skip
        image_id = iidfile.read_text().strip()
        iidfile.unlink()
        return image_id

    def tag(self, image: str, tag: str) -> None:
        self._run("tag", image, tag)

    def untag(self, tag: str) -> None:
        self._run("rmi", "--no-prune", tag)

    def push(self, tag: str, timeout_s: float) -> str:
        """Push and return the manifest digest the registry answered with."""
        output = self._run("push", tag, timeout_s=timeout_s)
        for line in output.splitlines():
            if "digest: " in line:
                return line.split("digest: ", 1)[1].split()[0]
        raise DockerError(f"docker push {tag} reported no digest:\n{output[-1000:]}")
