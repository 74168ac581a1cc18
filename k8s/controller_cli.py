"""``mlcanary controller``: the in-cluster rollout controller.

Mounted by the main CLI as a command function (``app.command("controller")(controller)``).
Credentials: ``--kubeconfig`` (or ``$KUBECONFIG``) outside a cluster, the pod's service account
inside one.
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

__all__ = ["controller"]

EXIT_USAGE = 2


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
) -> None:
    """Run the rollout controller: watch ModelRollouts, move traffic, roll back on regression."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        api_client = _api_client(kubeconfig)
    except ConfigException as exc:
        raise typer.BadParameter(str(exc), param_hint="--kubeconfig") from None
    with api_client:
        rollouts = RolloutController(api_client, namespace, drain_s=drain)
        try:
            if once:
                for report in rollouts.run_once():
                    status = report.status
                    typer.echo(
                        f"{status.phase.value:<12} canary {status.weights.canary:>3}%  "
                        f"{report.problem or status.message}"
                    )
                return
            stop = threading.Event()

            def _stop(signum: int, frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            rollouts.run(stop)
        finally:
            rollouts.close()
