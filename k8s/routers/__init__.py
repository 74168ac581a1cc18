"""Routers that move traffic inside a cluster, behind `mlcanary.rollout.routers.base.Router`:
``gateway-api`` (an HTTPRoute's backendRef weights), ``istio`` (a VirtualService's destination
weights) and ``replicas`` (the two Deployments' replica counts behind one Service)."""
