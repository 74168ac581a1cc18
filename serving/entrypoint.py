"""``bentoml serve`` for the mlcanary service, with a Prometheus directory of its own.

BentoML keeps the multiprocess metric files of its workers in one directory under BENTOML_HOME
and empties it whenever a server starts. Two servers on one machine (a stable and a canary)
therefore share it: the second wipes the first one's files, and both then export the second
one's counters. Each server started here gets a fresh directory, removed when it stops. The
override goes through BentoML's dependency container, which is internal API: the version of
BentoML is pinned for that reason.
"""

from __future__ import annotations

import shutil
import sys
import tempfile

from bentoml._internal.configuration.containers import BentoMLContainer

__all__ = ["SERVICE_IMPORT", "main"]

SERVICE_IMPORT = "mlcanary.serving.service:ModelService"


def main(argv: list[str]) -> int:
    metrics_dir = tempfile.mkdtemp(prefix="mlcanary-metrics-")
    BentoMLContainer.prometheus_multiproc_dir.set(metrics_dir)
    from bentoml_cli.cli import cli

    try:
        cli.main(["serve", SERVICE_IMPORT, *argv], prog_name="bentoml", standalone_mode=False)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
