"""Load shapes for the labeled traffic: step, ramp and spike, sized by the ``--shape-*`` options.

Each class only reads the options and asks its curve (`shape_curves`). Locust runs whichever
shape class a locustfile holds, so each shape has its own small locustfile
(``locustfile_step.py`` ...); or load this module with ``--class-picker`` to choose in the web UI.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from typing import ClassVar

from locust import LoadTestShape

from mlcanary.loadtest.shape_curves import ShapeParameters, ramp_users, spike_users, step_users

__all__ = ["RampShape", "SpikeShape", "StepShape"]


class _OptionShape(LoadTestShape):
    abstract: ClassVar[bool] = True

    @abstractmethod
    def users_at(self, elapsed_s: float, p: ShapeParameters) -> int: ...

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        p = ShapeParameters.from_options(self.runner.environment.parsed_options)
        elapsed = time.perf_counter() - self.start_time
        if elapsed >= p.duration_s:
            return None
        # Spawning at the peak count per second reaches any target within a second.
        return self.users_at(elapsed, p), float(p.peak_users)


class StepShape(_OptionShape):
    def users_at(self, elapsed_s: float, p: ShapeParameters) -> int:
        return step_users(elapsed_s, p)


class RampShape(_OptionShape):
    def users_at(self, elapsed_s: float, p: ShapeParameters) -> int:
        return ramp_users(elapsed_s, p)


class SpikeShape(_OptionShape):
    def users_at(self, elapsed_s: float, p: ShapeParameters) -> int:
        return spike_users(elapsed_s, p)
