"""The local router: the router of the single-machine platform, as its own process.

It runs apart from the controller so that traffic keeps its weights while the controller is
stopped or restarted, and it keeps its table in a state file so that it survives its own restart
too. `kind` is its entry in the router registry (its spec rules), `app` the HTTP app
(forwarding and the admin API), `state` the route table and how it changes, `admin` the adapter
the controller and the CLI change it through, `cli` the ``mlcanary router`` commands.
"""
