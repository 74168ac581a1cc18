"""Object names: valid Service names for every model and version name the spec accepts."""

from __future__ import annotations

import re

import pytest

from mlcanary.k8s import naming

DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def test_plain_names_are_kept_readable():
    assert naming.workload("digits", "v2") == "digits-v2"
    assert naming.route("digits") == "digits"
    assert naming.feedback_secret("digits") == "digits-feedback"


@pytest.mark.parametrize(
    ("model", "version"),
    [("digits", "v1.0"), ("9digits", "v1"), ("m_x", "a" * 63), ("digits", "v1_0")],
)
def test_awkward_names_become_valid_service_names(model, version):
    name = naming.workload(model, version)
    assert DNS_LABEL.fullmatch(name), name
    assert len(name) <= 63


def test_versions_that_clean_up_alike_still_get_distinct_names():
    assert len({naming.workload("digits", v) for v in ("v1.0", "v1-0", "v1_0")}) == 3
