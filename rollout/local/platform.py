"""Wires a controller for the single-machine mode: local processes, the local proxy, and
Prometheus when it is installed (otherwise the services are scraped directly, and it says so)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mlcanary.rollout.controller import Controller
from mlcanary.rollout.local.processes import ProcessRegistry
from mlcanary.rollout.local.prometheus import prometheus_available, start_prometheus, write_targets
from mlcanary.rollout.local.workloads import LocalWorkloads
from mlcanary.rollout.metrics.base import MetricsProvider
from mlcanary.rollout.metrics.prometheus import PrometheusProvider
from mlcanary.rollout.metrics.scrape import ScrapeProvider
from mlcanary.rollout.routers.local import LocalRouter
from mlcanary.rollout.spec import ModelRollout
from mlcanary.rollout.store.file import FileStatusStore

__all__ = ["DEFAULT_ROUTER", "LocalPlatform"]

DEFAULT_ROUTER = "http://127.0.0.1:8080"
ROUTER = "router"


def _port(url: str) -> int:
    parts = urlsplit(url)
    if parts.hostname not in {"127.0.0.1", "localhost"} or parts.port is None:
        raise ValueError(f"{url}: the local platform listens on 127.0.0.1 with an explicit port")
    return parts.port


@dataclass
class LocalPlatform:
    """Everything the single-machine mode runs, under one state directory."""

    state_dir: Path
    say: Callable[[str], None] = print

    def __post_init__(self) -> None:
        # Absolute, because the processes started from here may run in other directories.
        self.state_dir = self.state_dir.resolve()

    @property
    def registry(self) -> ProcessRegistry:
        return ProcessRegistry(self.state_dir / "processes")

    @property
    def store(self) -> FileStatusStore:
        return FileStatusStore(self.state_dir / "rollouts")

    def router_address(self, rollout: ModelRollout) -> str:
        return rollout.spec.router.address or DEFAULT_ROUTER

    def ensure_router(self, address: str, model: str, stable_version: str) -> LocalRouter:
        """The proxy, started with stable at 100% if it is not running yet."""
        if self.registry.get(ROUTER) is None:
            stable_url = LocalWorkloads(self.registry).ensure(model, stable_version)
            command = [
                sys.executable, "-m", "mlcanary.cli", "router", "serve",
                "--listen", urlsplit(address).netloc,
                "--state", str(self.state_dir / "router-state.json"),
                "--route", f"{stable_version}={stable_url}=100",
            ]  # fmt: skip
            _port(address)
            self.say(f"starting the local router on {address}")
            self.registry.ensure(ROUTER, command, address, "/-/readyz", env=dict(os.environ))
        return LocalRouter(address)

    def _scrape_targets(self, router_address: str) -> None:
        hosts = [urlsplit(url).netloc for url in LocalWorkloads(self.registry).urls()]
        write_targets(
            self.state_dir / "prometheus",
            {"services": hosts, "router": [urlsplit(router_address).netloc]},
        )

    def controller(self, rollout: ModelRollout, timeline: Path | None = None) -> Controller:
        spec = rollout.spec
        router_address = self.router_address(rollout)
        use_prometheus = spec.metrics.provider == "prometheus" and spec.metrics.address is not None
        if use_prometheus and not prometheus_available():
            self.say(
                "prometheus is not installed: reading the services' /metrics directly "
                "(apt-get install prometheus for the real server)"
            )
            use_prometheus = False
        metrics: MetricsProvider
        if use_prometheus:
            assert spec.metrics.address is not None
            start_prometheus(
                self.registry,
                self.state_dir / "prometheus",
                _port(spec.metrics.address),
                {"services": "/metrics", "router": "/-/metrics"},
            )
            workloads = LocalWorkloads(
                self.registry, on_change=lambda: self._scrape_targets(router_address)
            )
            metrics = PrometheusProvider(spec.metrics.address)
        else:
            workloads = LocalWorkloads(self.registry)
            metrics = ScrapeProvider(workloads.urls)
        router = self.ensure_router(router_address, spec.model, spec.stable.version)
        for version in (spec.stable.version, spec.canary.version):
            workloads.ensure(spec.model, version)
        if use_prometheus:
            self._scrape_targets(router_address)
        return Controller(
            rollout=rollout,
            router=router,
            metrics=metrics,
            store=self.store,
            workloads=workloads,
            timeline=timeline,
        )

    def down(self) -> None:
        for name in self.registry.names():
            self.registry.stop(name)
