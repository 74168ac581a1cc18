"""The BentoML service: one model version per server, chosen by ``MLCANARY_MODEL``.

Serve it with ``mlcanary serve --model digits:v1`` (which sets the environment) or directly with
``bentoml serve mlcanary.serving.service:ModelService``. Heavy imports (the model frameworks,
prometheus_client) happen in ``__init__``, inside the worker, after BentoML has prepared it.
"""

from __future__ import annotations

import gc

import bentoml

from mlcanary.serving.http_app import ENDPOINTS, HANDLERS, build_app
from mlcanary.serving.openapi import docs_app, document
from mlcanary.settings import ServiceSettings

__all__ = ["ModelService"]

app = build_app()
docs = docs_app()  # mounted second: it only describes the endpoints (see serving/openapi.py)

_hot_paths = ",".join(sorted(ENDPOINTS))
_service = ServiceSettings.from_env()


@bentoml.asgi_app(docs, path="/")
@bentoml.asgi_app(app, path="/")
@bentoml.service(
    name="mlcanary",
    workers=_service.workers,
    traffic={"timeout": _service.request_timeout_s},
    logging={"access": {"enabled": _service.access_log}},
    tracing={} if _service.trace_endpoints else {"excluded_urls": _hot_paths},
)
class ModelService:
    def __init__(self) -> None:
        from mlcanary.serving.assembly import build_runtime
        from mlcanary.settings import ServingSettings

        settings = ServingSettings.from_env()
        self.runtime = build_runtime(settings)
        document(docs, self.runtime.version, settings.max_batch, HANDLERS)
        app.state.runtime = self.runtime
        # The loaded model and libraries are hundreds of thousands of long-lived objects that
        # every full collection would scan again: freeze them, and collect young objects in
        # larger, rarer passes. Measured, this took the p99 of a busy server from ~250 ms to
        # ~30 ms (docs/serving-performance.md); memory stays bounded, cycles are still collected.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 1000)

    def __is_ready__(self) -> bool:
        return getattr(app.state, "runtime", None) is not None
