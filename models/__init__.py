"""Model versions: training, safe artifact formats, digests and the BentoML model store."""

from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)
