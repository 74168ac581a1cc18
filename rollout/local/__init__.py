"""The single-machine platform: model services, the weighted proxy and Prometheus as processes.

Each runs detached from the controller and is recorded in a small registry, so that a controller
killed and started again finds the same processes serving the same traffic.
"""
