"""The single-machine platform, beside `mlcanary.k8s` (the cluster platform): model services,
the local router and Prometheus as processes on this machine, the status in files, and the
``mlcanary rollout``, ``router`` and ``platform`` commands.

Each process runs detached from the controller and is recorded in a small registry, so that a
controller killed and started again finds the same processes serving the same traffic.
"""

from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)
