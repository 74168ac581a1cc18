"""The same model version served the usual ways, for side-by-side benchmarks.

Each loads the model through mlcanary's loader, so the only difference measured is the server.
"""
