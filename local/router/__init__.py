"""The local router: HAProxy carries the traffic of the single-machine platform, mlcanary steers it.

HAProxy runs as its own process so that traffic keeps its weights while the controller is
stopped or restarted, and its configuration is rendered from a persisted route table so that
it keeps them across its own restart too. `kind` is its entry in the router registry (its spec
rules), `haproxy` the configuration, `runtime` HAProxy's runtime API, `state` the router's
files, `admin` the adapter the controller and the CLI change the routes through, `cli` the
``mlcanary router`` commands. docs/local-router.md explains the design.
"""
