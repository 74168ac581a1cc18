"""The one rule for model and version names.

Names end up in Prometheus labels, PromQL, file paths and Kubernetes labels, so they are held to
a pattern that is safe in all of them. Every module that accepts a name checks it against this.
"""

from __future__ import annotations

import re

__all__ = ["NAME", "NAME_PATTERN", "OBJECT_NAME_PATTERN"]

NAME_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,62}"
NAME = re.compile(NAME_PATTERN)
# A DNS-1123 subdomain, what Kubernetes accepts as the name of an object (a rollout, a Secret).
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
