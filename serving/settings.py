"""Serving settings, read from the environment.

``bentoml serve`` takes no service arguments, and a container takes its configuration from the
environment anyway, so the CLI and the Kubernetes manifests both set these variables.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServingSettings", "SettingsError", "mlcanary_home"]


class SettingsError(ValueError):
    """A serving setting is missing or out of range."""


def mlcanary_home(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env.get("MLCANARY_HOME", Path.home() / ".mlcanary"))


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is outside {low}..{high}")
    return value


def _feedback_secret(env: Mapping[str, str], home: Path) -> bytes:
    """The HMAC key every replica shares; created once per machine when none is given."""
    if value := env.get("MLCANARY_FEEDBACK_SECRET"):
        if len(value) < 16:
            raise SettingsError("MLCANARY_FEEDBACK_SECRET is shorter than 16 bytes")
        return value.encode()
    path = Path(env.get("MLCANARY_FEEDBACK_SECRET_FILE", home / "feedback.key"))
    if not path.exists():
        _create_secret(path)
    secret = path.read_text().strip().encode()
    if len(secret) < 16:
        raise SettingsError(f"feedback secret in {path} is shorter than 16 bytes")
    return secret


def _create_secret(path: Path) -> None:
    """Written aside and hard-linked into place, so that workers starting together all read
    one complete key: the link either creates the file whole or finds another worker's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    try:
        os.link(staging, path)
    except FileExistsError:
        pass
    finally:
        staging.unlink()


@dataclass(frozen=True)
class ServingSettings:
    model: str
    device: str
    max_batch: int
    max_body_bytes: int
    max_inflight: int
    feedback_ttl_s: int
    torch_threads: int
    gpu_sample_s: int
    ledger_path: Path
    feedback_secret: bytes

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ServingSettings:
        model = env.get("MLCANARY_MODEL")
        if not model:
            raise SettingsError("MLCANARY_MODEL is not set; it names the version, e.g. digits:v1")
        home = mlcanary_home(env)
        return cls(
            model=model,
            device=env.get("MLCANARY_DEVICE", "auto"),
            max_batch=_int(env, "MLCANARY_MAX_BATCH", 1024, 1, 1_000_000),
            max_body_bytes=_int(env, "MLCANARY_MAX_BODY_BYTES", 8 << 20, 1024, 1 << 30),
            max_inflight=_int(env, "MLCANARY_MAX_INFLIGHT", 256, 1, 100_000),
            feedback_ttl_s=_int(env, "MLCANARY_FEEDBACK_TTL_S", 86_400, 60, 30 * 86_400),
            torch_threads=_int(env, "MLCANARY_TORCH_THREADS", 1, 1, 256),
            gpu_sample_s=_int(env, "MLCANARY_GPU_SAMPLE_S", 5, 1, 3600),
            ledger_path=Path(env.get("MLCANARY_LEDGER", home / "feedback-ledger.sqlite")),
            feedback_secret=_feedback_secret(env, home),
        )
