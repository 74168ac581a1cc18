"""Labeled traffic under the spike shape (``shapes.SpikeShape``), e.g.

    locust -f loadtest/traffic/locustfile_spike.py --host URL --headless \\
        --shape-peak-users 50 --shape-duration-s 60

"""

from __future__ import annotations

from mlcanary.loadtest.traffic.locustfile import LabeledTrafficUser
from mlcanary.loadtest.traffic.shapes import SpikeShape

__all__ = ["LabeledTrafficUser", "SpikeShape"]
