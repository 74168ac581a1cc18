"""The modules that run inside Locust: locustfiles, load shapes, options, CI budgets and the
per-window recorder.

Kept apart from the rest of `mlcanary.loadtest` because importing Locust patches the process
for gevent (sockets, threads, time): the pure modules (the capacity search, stability and
verdict rules, reports, costs) are imported by the CLI and the tests without that side effect,
and run Locust only as a subprocess. Run a locustfile with the plain ``locust`` command, e.g.
``locust -f loadtest/traffic/locustfile.py --host URL``.
"""
