"""The resource types the API double serves, and how each behaves.

A table rather than code per kind, because the API server itself treats them alike: what differs
is the URL (core ``/api/v1`` or ``/apis/GROUP/VERSION``), whether a status subresource splits the
writes, and whether the object counts spec generations.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RESOURCES", "ResourceType", "find_resource"]


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    versions: tuple[str, ...]
    plural: str
    kind: str
    # A status subresource: writes to the object keep the stored status, writes to /status
    # change nothing else (Deployments, and every CRD here declares one).
    has_status: bool = True
    # metadata.generation counts spec changes (every kind with a spec and a status does).
    tracks_generation: bool = True
    has_scale: bool = False
    # What the API server's defaulting fills in when spec.replicas is left out (Deployments: 1).
    default_replicas: int | None = None
    # Whether a replace (PUT) may leave metadata.resourceVersion out and overwrite whatever is
    # stored. A Lease's strategy refuses that (422): its writes must name the version they read.
    unconditional_update: bool = True
    # Spec fields decoded as metav1.MicroTime, which the API server parses only with exactly six
    # fraction digits (``2006-01-02T15:04:05.000000Z07:00``): anything else is 400 BadRequest.
    micro_times: tuple[str, ...] = ()

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("apps", ("v1",), "deployments", "Deployment", has_scale=True, default_replicas=1),
    ResourceType("", ("v1",), "services", "Service", tracks_generation=False),
    ResourceType("", ("v1",), "configmaps", "ConfigMap", has_status=False, tracks_generation=False),
    ResourceType("", ("v1",), "events", "Event", has_status=False, tracks_generation=False),
    ResourceType("events.k8s.io", ("v1",), "events", "Event", False, False),
    ResourceType("gateway.networking.k8s.io", ("v1",), "httproutes", "HTTPRoute"),
    ResourceType(
        "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), "virtualservices", "VirtualService"
    ),
    ResourceType("mlcanary.dev", ("v1alpha1",), "modelrollouts", "ModelRollout"),
    ResourceType(
        "coordination.k8s.io",
        ("v1",),
        "leases",
        "Lease",
        has_status=False,
        tracks_generation=False,
        unconditional_update=False,
        micro_times=("acquireTime", "renewTime"),
    ),
)


def find_resource(group: str, version: str, plural: str) -> ResourceType | None:
    return next(
        (r for r in RESOURCES if r.group == group and r.plural == plural and version in r.versions),
        None,
    )
