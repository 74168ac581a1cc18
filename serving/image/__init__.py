"""Container images of one model version: a Bento, a wheelhouse, and ``Dockerfile.gpu``."""
