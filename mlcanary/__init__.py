"""mlcanary: serve ML model versions with BentoML and promote new ones safely."""

__version__ = "0.1.0"
