"""The cluster platform, beside `mlcanary.local`: manifests and their validation, the
ModelRollout CRD, RBAC, and the in-cluster controller with its routers (one module each, named
in the core's router registry), status store and workloads. The API server test double the
controller is tested against lives with the tests (``tests/k8s/apiserver_double``)."""

from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)
