"""Model versions: register a user's model (``mlcanary.models.register``) or an artifact made
elsewhere (`import_artifact`), in safe formats, with digests, an input schema and a task, in
BentoML's model store; the digits reference versions are one user of it (`reference`)."""

from mlcanary.models.api import RegistrationError, import_artifact, register
from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)

__all__ = ["RegistrationError", "import_artifact", "register"]
