"""The controller's Role: least privilege, from the one permissions constant."""

from __future__ import annotations

import pytest

from mlcanary.k8s import crd, rbac
from mlcanary.k8s.validation import validate_objects

from .conftest import ROUTERS

ALLOWED_VERBS = {"get", "list", "watch", "create", "update", "patch"}


@pytest.mark.parametrize("router", ROUTERS)
def test_the_role_grants_no_secrets_no_wildcards_and_no_delete(router):
    role = rbac.role("prod", router)
    assert role["kind"] == "Role"  # namespaced, never a ClusterRole
    for rule in role["rules"]:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule
        assert not {"secrets", "configmaps", "pods/exec"} & set(rule["resources"]), rule
        assert set(rule["verbs"]) <= ALLOWED_VERBS, rule
        assert "resourceNames" not in rule or rule["resourceNames"]


@pytest.mark.parametrize("router", ROUTERS)
def test_the_role_is_exactly_the_permissions_constant_for_its_router(router):
    granted = {
        (g, r, v)
        for rule in rbac.role("prod", router)["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    expected = {(p.api_group, p.resource, v) for p in rbac.permissions_for(router) for v in p.verbs}
    assert granted == expected
    assert ("mlcanary.dev", f"{crd.PLURAL}/status", "update") in granted


def test_each_router_gets_only_its_own_routing_resource():
    def resources(router: str) -> set[str]:
        return {p.resource for p in rbac.permissions_for(router)}

    assert "httproutes" in resources("gateway-api")
    assert "virtualservices" not in resources("gateway-api")
    assert "virtualservices" in resources("istio")
    assert not {"httproutes", "virtualservices"} & resources("replicas")


def test_the_rbac_objects_are_valid_and_bound_to_the_service_account():
    objects = [rbac.service_account("prod"), rbac.role("prod", "istio"), rbac.role_binding("prod")]
    assert validate_objects(objects) == []
    binding = objects[2]
    assert binding["roleRef"]["name"] == objects[1]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": objects[0]["metadata"]["name"], "namespace": "prod"}
    ]
