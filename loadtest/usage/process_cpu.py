"""CPU of a process and all its descendants (workers, forked generator processes), from psutil.

CPU times are differenced per process rather than read with ``cpu_percent``, whose first call for
each new process returns 0: workers that appear mid-level are counted from their first sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil

__all__ = ["ProcessTreeCpu", "TreeSample"]


@dataclass(frozen=True)
class TreeSample:
    busiest_pct: float
    total_pct: float
    processes: int


class ProcessTreeCpu:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._last: dict[int, float] = {}
        self._last_time = time.monotonic()
        self._started = False

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def sample_tree(self) -> TreeSample | None:
        now = time.monotonic()
        elapsed = now - self._last_time
        times: dict[int, float] = {}
        for process in self._tree():
            try:
                cpu = process.cpu_times()
            except psutil.Error:
                continue
            times[process.pid] = cpu.user + cpu.system
        deltas = [t - self._last.get(pid, 0.0) for pid, t in times.items()]
        started, self._started = self._started, True
        self._last, self._last_time = times, now
        if not started or elapsed <= 0 or not times:
            return None
        percents = [max(0.0, 100 * d / elapsed) for d in deltas]
        return TreeSample(max(percents), sum(percents), len(percents))

    def sample(self) -> float | None:
        tree = self.sample_tree()
        return tree.total_pct if tree is not None else None
