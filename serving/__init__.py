"""The BentoML service that serves one model version: predict, feedback, health, metrics."""

from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)
