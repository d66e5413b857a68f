"""The scm-worker distribution's version: the client's, and the worker it must drive.

pyproject.toml reads it from here (setuptools' dynamic version); scm_worker's own
``__version__`` must equal it (a test checks), because the client refuses a worker of
another version at the handshake.
"""

__version__ = "0.1.0"
