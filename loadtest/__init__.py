"""Load generation with Locust: labeled traffic, load shapes, CI budgets, and the capacity search
(`search`, run by `level_runner_locust`, reported by `report` and `compare`)."""

from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)
