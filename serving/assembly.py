"""Builds a worker's runtime from its settings: the one place that picks implementations."""

from __future__ import annotations

from mlcanary.models.registry import ModelRef, get_version, load_predictor
from mlcanary.serving.batching import MicroBatcher
from mlcanary.serving.gpu_metrics import start_gpu_sampler
from mlcanary.serving.ledger import open_ledger
from mlcanary.serving.metrics import ServingMetrics, ShadowMetrics
from mlcanary.serving.mirror_file import MirrorFile, mirror_file_name
from mlcanary.serving.runtime import FeedbackLimits, ModelRuntime
from mlcanary.serving.shadow import CopyLimits, ShadowCopier
from mlcanary.serving.tokens import TokenSigner
from mlcanary.settings import ServingSettings

__all__ = ["build_runtime"]


def build_runtime(settings: ServingSettings) -> ModelRuntime:
    ref = ModelRef.parse(settings.model)
    if get_version(ref).framework == "torch":
        import torch

        # One intra-op thread per worker: small batches gain nothing from more, and on a shared
        # CPU torch's spinning worker threads multiply tail latency. Scale with workers instead.
        torch.set_num_threads(settings.torch_threads)
    version, predictor = load_predictor(ref, settings.device)
    metrics = ServingMetrics(
        version.ref.name,
        version.ref.version,
        version.framework,
        predictor.device,
        version.digest,
        task=version.task.value,
    )
    # The sampler thread lives as long as the worker process, like the model it reports on.
    start_gpu_sampler(version.ref.name, version.ref.version, settings.gpu_sample_s)
    shadow = None
    if settings.shadow_dir is not None:
        shadow = ShadowCopier(
            version.ref.version,
            version.output,
            MirrorFile(settings.shadow_dir / mirror_file_name(version.ref.name)),
            ShadowMetrics(version.ref.name, version.ref.version),
            CopyLimits(
                queue=settings.shadow_queue,
                queue_bytes=settings.shadow_queue_bytes,
                senders=settings.shadow_senders,
                timeout_s=settings.shadow_timeout_ms / 1000,
            ),
        )
    return ModelRuntime(
        version,
        MicroBatcher(predictor.predict, settings.max_batch),
        TokenSigner(settings.feedback_key),
        open_ledger(settings.ledger_url, settings.ledger_path, settings.feedback_ttl_s),
        metrics,
        max_batch=settings.max_batch,
        max_body_bytes=settings.max_body_bytes,
        max_inflight=settings.max_inflight,
        feedback=FeedbackLimits(settings.feedback_ttl_s, settings.labeler_credential),
        shadow=shadow,
    )
