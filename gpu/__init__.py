"""GPU awareness: NVML probing, device placement, and the ``mlcanary gpu`` commands."""

from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)
