"""``mlcanary controller``: the in-cluster rollout controller.

Mounted by the main CLI as a command function (``app.command("controller")(controller)``).
Credentials: ``--kubeconfig`` (or ``$KUBECONFIG``) outside a cluster, the pod's service account
inside one. While it runs (not with ``--once``), ``/healthz`` and ``/readyz`` answer on
``--health-host``:``--health-port`` for the kubelet's probes (`controller_health`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from kubernetes import config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from mlcanary.k8s.controller import RolloutController
from mlcanary.k8s.controller_health import HEALTH_PORT, STALE_AFTER_S, HealthServer, LoopProgress

__all__ = ["controller"]


def _api_client(kubeconfig: Path | None) -> ApiClient:
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise typer.BadParameter(f"{kubeconfig} is not a file", param_hint="--kubeconfig")
        configuration = Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
        return ApiClient(configuration)
    if "KUBERNETES_SERVICE_HOST" not in os.environ:
        raise typer.BadParameter(
            "not running in a cluster (no KUBERNETES_SERVICE_HOST): pass a kubeconfig file",
            param_hint="--kubeconfig",
        )
    configuration = Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return ApiClient(configuration)


def controller(
    *,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Watch the ModelRollouts of this namespace.")
    ],
    kubeconfig: Annotated[
        Path | None,
        typer.Option(envvar="KUBECONFIG", help="Outside a cluster: its kubeconfig file."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Tick every active rollout once, then exit.")
    ] = False,
    drain: Annotated[
        float, typer.Option(min=0, help="Seconds a finished rollout's loser keeps its pods.")
    ] = 10.0,
    health_host: Annotated[
        str, typer.Option(help="Address of /healthz and /readyz (0.0.0.0 in a pod).")
    ] = "127.0.0.1",
    health_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of /healthz and /readyz.")
    ] = HEALTH_PORT,
    stale_after: Annotated[
        float,
        typer.Option(
            min=1, help="Seconds without progress of the loop after which /healthz answers 503."
        ),
    ] = STALE_AFTER_S,
) -> None:
    """Run the rollout controller: watch ModelRollouts, move traffic, roll back on regression."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        api_client = _api_client(kubeconfig)
    except ConfigException as exc:
        raise typer.BadParameter(str(exc), param_hint="--kubeconfig") from None
    with api_client:
        try:
            rollouts = RolloutController(
                api_client, namespace, drain_s=drain, progress=LoopProgress(stale_after)
            )
        except ValueError as exc:
            problem = str(exc).removeprefix("stale_after_s: ")
            raise typer.BadParameter(problem, param_hint="--stale-after") from None
        try:
            if once:
                for report in rollouts.run_once():
                    status = report.status
                    typer.echo(
                        f"{status.phase.value:<12} canary {status.weights.canary:>3}%  "
                        f"{report.problem or status.message}"
                    )
                return
            try:
                health = HealthServer(rollouts.progress, health_host, health_port)
            except OSError as exc:
                raise typer.BadParameter(
                    f"cannot listen on {health_host}:{health_port}: {exc.strerror or exc}",
                    param_hint="--health-port",
                ) from None
            stop = threading.Event()

            def _stop(signum: int, frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            with health:
                rollouts.run(stop)
        finally:
            rollouts.close()


if __name__ == "__main__":
    # The controller's pod runs this module rather than the ``mlcanary`` CLI, which loads
    # torch and BentoML for its other commands: ~100 MB resident instead of ~400.
    typer.run(controller)
