"""Wires a controller for the single-machine mode: local processes, the local router (HAProxy),
and Prometheus when it is installed (otherwise the services are scraped directly, and it says
so)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mlcanary.local.file_store import FileStatusStore
from mlcanary.local.mirror import LocalMirror
from mlcanary.local.processes import ProcessRegistry, ProcessStartError
from mlcanary.local.prometheus import prometheus_available, start_prometheus, write_targets
from mlcanary.local.router.admin import LocalRouter
from mlcanary.local.router.haproxy import MISSING_HAPROXY, haproxy_binary
from mlcanary.local.router.kind import DEFAULT_ADDRESS, loopback_port
from mlcanary.local.router.state import RouterFiles
from mlcanary.local.workloads import LocalWorkloads
from mlcanary.metrics.kind import Sources, metrics_provider
from mlcanary.notify.gates import HttpGates
from mlcanary.notify.kind import UnresolvedUrlError, resolve_url
from mlcanary.rollout.controller import Controller
from mlcanary.rollout.platforms import platform_problems
from mlcanary.rollout.routers.base import RouterUnavailableError
from mlcanary.rollout.spec import MetricsSpec, ModelRollout, RolloutSpec

if TYPE_CHECKING:
    from mlcanary.notify.counts import DeliveryCounts
    from mlcanary.notify.dispatcher import Dispatcher

__all__ = ["LocalPlatform", "local_problems"]

ROUTER = "router"


def local_problems(spec: RolloutSpec) -> list[tuple[str, str]]:
    """Whether the spec can run on this machine, found before anything starts: the platform
    rules of every mode, and this platform's own: Prometheus, which it starts where the spec
    says, listens on loopback with an explicit port; a notification URL read from a variable
    is set in this environment."""
    problems = platform_problems(spec, "local")
    if spec.metrics.provider == "prometheus" and spec.metrics.address is not None:
        try:
            loopback_port(spec.metrics.address)
        except ValueError as exc:
            problems.append(("spec.metrics.address", str(exc)))
    for index, target in enumerate(spec.notifications):
        if target.url_from is not None and target.url_from.env is not None:
            try:
                resolve_url(target, os.environ)
            except UnresolvedUrlError as exc:
                problems.append((f"spec.notifications[{index}].urlFrom.env", str(exc)))
    return problems


@dataclass
class LocalPlatform:
    """Everything the single-machine mode runs, under one state directory."""

    state_dir: Path
    say: Callable[[str], None] = print
    # How the notifications of the rollouts run from here were delivered (once one runs).
    notifications: DeliveryCounts | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Absolute, because the processes started from here may run in other directories.
        self.state_dir = self.state_dir.resolve()

    @property
    def registry(self) -> ProcessRegistry:
        return ProcessRegistry(self.state_dir / "processes")

    @property
    def store(self) -> FileStatusStore:
        return FileStatusStore(self.state_dir / "rollouts")

    @property
    def shadow_dir(self) -> Path:
        """Where the mirror files are: every server of the platform reads its model's, so a
        stable version started before a rollout with a shadow step copies all the same."""
        return self.state_dir / "shadow"

    def workloads(self, on_change: Callable[[], None] | None = None) -> LocalWorkloads:
        return LocalWorkloads(self.registry, on_change=on_change, shadow_dir=self.shadow_dir)

    def router_address(self, rollout: ModelRollout) -> str:
        return rollout.spec.router.address or DEFAULT_ADDRESS

    def ensure_router(self, address: str, model: str, stable_version: str) -> LocalRouter:
        """The router, started now if it is not running (stable at 100% when it has no table
        yet). The adapter returned checks before every call that the router runs and starts it
        again if not, so a router that was killed is back at the controller's next tick, with
        the persisted weights."""
        loopback_port(address)
        files = RouterFiles.of_platform(self.state_dir)

        def start() -> None:
            if self.registry.get(ROUTER) is not None:
                return
            command = [
                sys.executable, "-m", "mlcanary.cli", "router", "serve",
                "--state-dir", str(self.state_dir), "--listen", urlsplit(address).netloc,
            ]  # fmt: skip
            if not files.table.exists():
                stable_url = self.workloads().ensure(model, stable_version)
                command += ["--route", f"{stable_version}={stable_url}=100"]
            self.say(f"starting the local router on {address}")
            try:
                self.registry.ensure(
                    ROUTER, command, address, "/-/readyz", env=dict(os.environ), timeout_s=60
                )
            except ProcessStartError as exc:
                raise RouterUnavailableError(f"the local router did not start: {exc}") from exc

        start()
        return LocalRouter(files.directory, ensure_running=start)

    def _scrape_targets(self, router_address: str) -> None:
        hosts = [urlsplit(url).netloc for url in LocalWorkloads(self.registry).urls()]
        write_targets(
            self.state_dir / "prometheus",
            {"services": hosts, "router": [urlsplit(router_address).netloc]},
        )

    def controller(self, rollout: ModelRollout, timeline: Path | None = None) -> Controller:
        if haproxy_binary() is None:
            raise RuntimeError(MISSING_HAPROXY)
        spec = rollout.spec
        router_address = self.router_address(rollout)
        metrics_spec = spec.metrics
        if metrics_spec.provider == "prometheus" and not prometheus_available():
            self.say(
                "prometheus is not installed: reading the services' /metrics directly "
                "(apt-get install prometheus for the real server)"
            )
            metrics_spec = MetricsSpec(provider="scrape")
        use_prometheus = metrics_spec.provider == "prometheus" and metrics_spec.address is not None
        if use_prometheus:
            assert metrics_spec.address is not None
            start_prometheus(
                self.registry,
                self.state_dir / "prometheus",
                loopback_port(metrics_spec.address),
                {"services": "/metrics", "router": "/-/metrics"},
            )
            workloads = self.workloads(on_change=lambda: self._scrape_targets(router_address))
        else:
            workloads = self.workloads()
        metrics = metrics_provider(metrics_spec, Sources(workloads.urls))
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
            notifier=self._notifier(rollout),
            confirm=HttpGates(rollout) if rollout.spec.gates else None,
            mirror=LocalMirror(self.shadow_dir),
        )

    def _notifier(self, rollout: ModelRollout) -> Dispatcher:
        """The spec's notification targets, URLs read from this environment; imported here,
        so that the commands that only read the state (rollout status) need none of it."""
        from mlcanary.notify.counts import DeliveryCounts
        from mlcanary.notify.dispatcher import dispatcher_for

        if self.notifications is None:
            self.notifications = DeliveryCounts()
        return dispatcher_for(rollout, self.notifications)

    def down(self) -> None:
        for name in self.registry.names():
            self.registry.stop(name)
