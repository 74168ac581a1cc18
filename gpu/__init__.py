"""GPU awareness: NVML probing, device placement, and the ``mlcanary gpu`` commands."""
