"""scm-worker: a long-lived Python 3.11 process that serves DoWhy's gcm over JSON-RPC."""

__version__ = "0.1.0"

#: Bumped when a wire shape changes incompatibly; the client checks it at handshake.
PROTOCOL_VERSION = 1
