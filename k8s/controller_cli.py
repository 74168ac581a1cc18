"""``mlcanary controller``: the in-cluster rollout controller.

Mounted by the main CLI as a command function (``app.command("controller")(controller)``).
Credentials: ``--kubeconfig`` (or ``$KUBECONFIG``) outside a cluster, the pod's service account
inside one. While it runs (not with ``--once``), ``/healthz`` and ``/readyz`` answer on
``--health-host``:``--health-port`` for the kubelet's probes (`controller_health`), beside
``/metrics``, the controller's counters of notifications.

Replicas elect a leader on the Lease ``--lease-name`` (`leading`); ``--identity`` names this
one (the pod's name, from ``$POD_NAME`` in the rendered Deployment; else host and process id).
``--once`` takes the same lease for its one pass, or refuses while another controller holds
it: a person's pass must not act beside the running controller. SIGTERM and SIGINT stop it:
the tick under way finishes with its status written, then the lease is handed back.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from kubernetes import config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from mlcanary.k8s import naming
from mlcanary.k8s.controller import RolloutController, user_agent
from mlcanary.k8s.controller_health import HEALTH_PORT, STALE_AFTER_S, HealthServer, LoopProgress
from mlcanary.k8s.leader import LeaderElector, LeaseSettings, LeaseSettingsError
from mlcanary.k8s.leading import LeadingController

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


def _lease(
    namespace: str,
    name: str,
    identity: str | None,
    durations: tuple[float, float, float],
) -> LeaseSettings:
    lease_duration, renew_deadline, retry_period = durations
    try:
        return LeaseSettings(
            name,
            namespace,
            identity or f"{socket.gethostname()}_{os.getpid()}",
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
    except LeaseSettingsError as exc:
        hint = "--" + exc.setting.replace("_", "-")
        raise typer.BadParameter(exc.message, param_hint=hint) from None


def _rollouts(
    api_client: ApiClient,
    lease: LeaseSettings,
    *,
    drain: float,
    progress: LoopProgress,
    may_act: Callable[[], bool],
) -> RolloutController:
    try:
        return RolloutController(
            api_client,
            lease.namespace,
            drain_s=drain,
            progress=progress,
            identity=lease.identity,
            may_act=may_act,
        )
    except ValueError as exc:
        problem = str(exc).removeprefix("stale_after_s: ")
        raise typer.BadParameter(problem, param_hint="--stale-after") from None


def _once(api_client: ApiClient, lease: LeaseSettings, drain: float) -> None:
    """Tick every active rollout once, holding the lease meanwhile (renewed by its thread)."""
    with LeaderElector(
        lease, api_client.configuration, user_agent=user_agent(lease.identity)
    ) as elector:
        if not elector.try_acquire():
            who = f"{elector.holder} holds it" if elector.holder else "it could not be read"
            typer.echo(
                f"not ticking: the lease {lease.namespace}/{lease.name} is not free ({who});"
                " --once does not act beside a running controller",
                err=True,
            )
            raise typer.Exit(1)
        elector.start()
        rollouts = _rollouts(
            api_client, lease, drain=drain, progress=LoopProgress(), may_act=lambda: elector.leading
        )
        try:
            for report in rollouts.run_once():
                status = report.status
                typer.echo(
                    f"{status.phase.value:<12} canary {status.weights.canary:>3}%  "
                    f"{report.problem or status.message}"
                )
        finally:
            rollouts.close()


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
        str, typer.Option(help="Address of /healthz, /readyz, /metrics (0.0.0.0 in a pod).")
    ] = "127.0.0.1",
    health_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of /healthz, /readyz and /metrics.")
    ] = HEALTH_PORT,
    stale_after: Annotated[
        float,
        typer.Option(
            min=1, help="Seconds without progress of the loop after which /healthz answers 503."
        ),
    ] = STALE_AFTER_S,
    lease_name: Annotated[
        str, typer.Option(help="The Lease the replicas elect their leader on.")
    ] = naming.CONTROLLER,
    identity: Annotated[
        str | None,
        typer.Option(
            envvar="POD_NAME",
            help="This replica's name in the Lease, unique among replicas [default: host_pid].",
        ),
    ] = None,
    lease_duration: Annotated[
        float, typer.Option(help="Seconds a standby waits, after the last renewal it saw.")
    ] = 15.0,
    renew_deadline: Annotated[
        float, typer.Option(help="Seconds the leader may fail to renew before it stops acting.")
    ] = 10.0,
    retry_period: Annotated[
        float, typer.Option(help="Seconds between two attempts to renew or take the lease.")
    ] = 2.0,
) -> None:
    """Run the rollout controller: watch ModelRollouts, move traffic, roll back on regression."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    lease = _lease(namespace, lease_name, identity, (lease_duration, renew_deadline, retry_period))
    try:
        api_client = _api_client(kubeconfig)
    except ConfigException as exc:
        raise typer.BadParameter(str(exc), param_hint="--kubeconfig") from None
    with api_client:
        if once:
            _once(api_client, lease, drain)
            return
        progress = LoopProgress(stale_after)
        leading = LeadingController(lease, api_client.configuration, progress)
        rollouts = _rollouts(
            api_client, lease, drain=drain, progress=progress, may_act=leading.may_act
        )
        try:
            try:
                health = HealthServer(
                    progress, health_host, health_port, rollouts.notifications.registry
                )
            except OSError as exc:
                raise typer.BadParameter(
                    f"cannot listen on {health_host}:{health_port}: {exc.strerror or exc}",
                    param_hint="--health-port",
                ) from None

            def _stop(signum: int, frame: FrameType | None) -> None:
                leading.stop()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            with health:
                leading.run(rollouts)
        finally:
            rollouts.close()
