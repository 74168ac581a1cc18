"""Test double of ``torch.cuda`` for device placement on machines without a GPU: the devices
and their free memory are given, the rest of torch is not involved."""

from __future__ import annotations

__all__ = ["FakeCuda"]


class FakeCuda:
    def __init__(self, free_bytes: list[int], total_bytes: int = 80 * 2**30) -> None:
        self._free = free_bytes
        self._total = total_bytes

    def is_available(self) -> bool:
        return bool(self._free)

    def device_count(self) -> int:
        return len(self._free)

    def mem_get_info(self, device: int) -> tuple[int, int]:
        return self._free[device], self._total
