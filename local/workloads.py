"""Model versions served as local BentoML processes, one `mlcanary serve` per version."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from mlcanary.local.processes import ProcessRegistry, ProcessStartError
from mlcanary.rollout.workloads import WorkloadNotReadyError
from mlcanary.serving.launcher import free_port
from mlcanary.settings import env_name

__all__ = ["LocalWorkloads"]


class LocalWorkloads:
    def __init__(
        self,
        registry: ProcessRegistry,
        workers: int = 1,
        timeout_s: float = 180,
        on_change: Callable[[], None] | None = None,
        shadow_dir: Path | None = None,
    ) -> None:
        """`on_change` runs after a version starts or stops (to update scrape targets);
        `shadow_dir` is where the servers read whether to copy requests to a canary."""
        self._registry = registry
        self._workers = workers
        self._timeout_s = timeout_s
        self._on_change = on_change
        self._shadow_dir = shadow_dir

    @staticmethod
    def process_name(model: str, version: str) -> str:
        return f"serve-{model}-{version}"

    def ensure(self, model: str, version: str) -> str:
        name = self.process_name(model, version)
        running = self._registry.get(name)
        if running is not None:
            return running.url
        port = free_port()
        command = [
            sys.executable, "-m", "mlcanary.cli", "serve", "--model", f"{model}:{version}",
            "--port", str(port), "--workers", str(self._workers),
        ]  # fmt: skip
        env = dict(os.environ)
        if self._shadow_dir is not None:
            env[env_name("shadow_dir")] = str(self._shadow_dir)
        try:
            started = self._registry.ensure(
                name,
                command,
                f"http://127.0.0.1:{port}",
                "/readyz",
                env=env,
                timeout_s=self._timeout_s,
            )
        except ProcessStartError as exc:
            raise WorkloadNotReadyError(f"{model}:{version} did not start: {exc}") from exc
        if self._on_change is not None:
            self._on_change()
        return started.url

    def retire(self, model: str, version: str) -> None:
        self._registry.stop(self.process_name(model, version))
        if self._on_change is not None:
            self._on_change()

    def urls(self) -> list[str]:
        """Every model service this registry runs."""
        return [
            entry.url
            for name in self._registry.names()
            if name.startswith("serve-") and (entry := self._registry.get(name)) is not None
        ]
