"""GPU awareness: device selection now; NVML probing and exporters build on it."""
