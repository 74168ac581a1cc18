"""Every ``MLCANARY_*`` environment variable, in one place.

Why one module: the serving worker reads these, while the launcher (``mlcanary serve``), the
Kubernetes renderer and the image builder write them for a child process, a pod or an image.
Each spells a variable through `env_name` here, so a renamed setting cannot leave one writer
behind, and `docs`-style tables can be generated from the models' fields.

Why pydantic models read through one mapping rather than a settings library reading the process
environment: the launcher checks the environment a child *will* get (``from_env(child_env)``)
before starting it, so that a bad value is one clear line instead of a worker's traceback. Values
are validated by pydantic (types, ranges), and every error names the variable.

``bentoml serve`` takes no service arguments and a container takes its configuration from the
environment anyway, which is why serving is configured this way at all.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "PREFIX",
    "BuildSettings",
    "KeySettings",
    "ServiceSettings",
    "ServingSettings",
    "SettingsError",
    "env_name",
    "mlcanary_home",
]

PREFIX = "MLCANARY_"
_SECRET_MIN_BYTES = 16


class SettingsError(ValueError):
    """A setting is missing or out of range; the message names the variable."""


def env_name(field: str) -> str:
    """The environment variable of a settings field: ``max_batch`` is ``MLCANARY_MAX_BATCH``."""
    return f"{PREFIX}{field.upper()}"


def mlcanary_home(env: Mapping[str, str] = os.environ) -> Path:
    """Where mlcanary keeps its state on this machine (``MLCANARY_HOME``, else ~/.mlcanary)."""
    return Path(env.get(env_name("home")) or Path.home() / ".mlcanary")


class _FromEnv(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Self:
        """The settings as the environment ``env`` gives them; an empty variable is unset."""
        values = {
            field: raw
            for field in cls.model_fields
            if (raw := env.get(env_name(field))) not in (None, "")
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problem = error.errors()[0]
            field = str(problem["loc"][0])
            if field not in values:
                shown = " is not set"
            else:  # a field kept out of repr holds a secret: never echoed
                shown = f"={values[field]!r}" if cls.model_fields[field].repr else " (hidden)"
            raise SettingsError(f"{env_name(field)}{shown}: {problem['msg']}") from None


class ServiceSettings(_FromEnv):
    """What the BentoML service declares when it is imported: server-wide, before any worker."""

    workers: int = Field(default=1, ge=1, le=256)
    request_timeout_s: int = Field(default=10, ge=1, le=3600)
    # BentoML's per-request access log; off by default (it costs ~10% of a request's time).
    access_log: bool = False
    # Trace the model endpoints with BentoML's OpenTelemetry middleware (off: ~15% of a request).
    trace_endpoints: bool = False


class KeySettings(_FromEnv):
    """The feedback keys of a machine: what servers and the clients that label share.

    Why apart from `ServingSettings`: a labeling pipeline or a load generator needs the labeler
    key without naming a model."""

    home: Path | None = None
    feedback_secret: str | None = Field(default=None, repr=False)
    feedback_secret_file: Path | None = None
    # The credential a caller of /feedback must present: tokens reach every client with its
    # predictions, so the token alone would let any client label its own predictions.
    labeler_key: str | None = Field(default=None, repr=False)
    labeler_key_file: Path | None = None

    @field_validator("feedback_secret", "labeler_key")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value) < _SECRET_MIN_BYTES:
            raise ValueError(f"shorter than {_SECRET_MIN_BYTES} bytes")
        return value

    @property
    def state_dir(self) -> Path:
        return self.home or Path.home() / ".mlcanary"

    @cached_property
    def feedback_key(self) -> bytes:
        """The HMAC key every replica shares."""
        return _shared_secret(
            self.feedback_secret,
            self.feedback_secret_file or self.state_dir / "feedback.key",
            "feedback_secret_file",
        )

    @cached_property
    def labeler_credential(self) -> bytes:
        """The bearer key of /feedback, which the labeling pipeline (and the load generator)
        hold and clients that only predict do not."""
        return _shared_secret(
            self.labeler_key,
            self.labeler_key_file or self.state_dir / "labeler.key",
            "labeler_key_file",
        )

    def labeler_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.labeler_credential.decode()}"}


class ServingSettings(ServiceSettings, KeySettings):
    """What one serving worker needs: the version it serves and its limits."""

    model: str = Field(min_length=1)
    device: str = "auto"
    max_batch: int = Field(default=1024, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=8 << 20, ge=1024, le=1 << 30)
    max_inflight: int = Field(default=256, ge=1, le=100_000)
    feedback_ttl_s: int = Field(default=86_400, ge=60, le=30 * 86_400)
    torch_threads: int = Field(default=1, ge=1, le=256)
    gpu_sample_s: int = Field(default=5, ge=1, le=3600)
    ledger: Path | None = None  # the SQLite ledger file, shared by the processes of a machine
    # A networked ledger shared by replicas on many machines (redis://host:port/db), instead.
    # Hidden from messages: it may hold a password.
    ledger_url: str | None = Field(default=None, pattern=r"^rediss?://\S+$", repr=False)
    # Where the platform says whether to copy requests to a canary (a rollout's shadow step):
    # the file {shadow_dir}/{model}.json. Unset: this server never copies.
    shadow_dir: Path | None = None
    # A worker's copies waiting to be sent (and their bytes), sent at once, and each one's limit.
    shadow_queue: int = Field(default=256, ge=1, le=100_000)
    shadow_queue_bytes: int = Field(default=32 << 20, ge=1 << 16, le=1 << 32)
    shadow_senders: int = Field(default=8, ge=1, le=1024)
    shadow_timeout_ms: int = Field(default=2000, ge=10, le=60_000)

    @property
    def ledger_path(self) -> Path:
        return self.ledger or self.state_dir / "feedback-ledger.sqlite"


def _shared_secret(value: str | None, path: Path, file_setting: str) -> bytes:
    """The variable, else the key file, created once per machine (mode 0600) when there is
    none, so that every process of a machine agrees without configuration."""
    if value is not None:
        return value.encode()
    if not path.exists():
        _create_secret(path)
    key = path.read_text().strip().encode()
    if len(key) < _SECRET_MIN_BYTES:
        raise SettingsError(
            f"{env_name(file_setting)}: the key in {path} is shorter than {_SECRET_MIN_BYTES} bytes"
        )
    return key


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


class BuildSettings(_FromEnv):
    """What ``mlcanary build`` reads: where to cache wheels and base images, which docker."""

    image_cache: Path = Path.home() / ".cache" / "mlcanary"
    # The docker client; unset: the distribution's /usr/bin/docker (it builds with the daemon's
    # own BuildKit, without buildx), else the first on PATH.
    docker: str | None = None
