"""Labeled traffic under the ramp shape (``shapes.RampShape``), e.g.

    locust -f loadtest/traffic/locustfile_ramp.py --host URL --headless \\
        --shape-peak-users 50 --shape-duration-s 60

"""

from __future__ import annotations

from mlcanary.loadtest.traffic.locustfile import LabeledTrafficUser
from mlcanary.loadtest.traffic.shapes import RampShape

__all__ = ["LabeledTrafficUser", "RampShape"]
