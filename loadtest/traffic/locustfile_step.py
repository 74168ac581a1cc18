"""Labeled traffic under the step shape (``shapes.StepShape``), e.g.

    locust -f loadtest/traffic/locustfile_step.py --host URL --headless \\
        --shape-peak-users 50 --shape-duration-s 60

"""

from __future__ import annotations

from mlcanary.loadtest.traffic.locustfile import LabeledTrafficUser
from mlcanary.loadtest.traffic.shapes import StepShape

__all__ = ["LabeledTrafficUser", "StepShape"]
