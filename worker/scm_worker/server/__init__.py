"""How requests arrive and replies leave: stdio or the daemon's socket, sessions, the
scheduler that runs one computation at a time, and the process's lifeline to its client.

Nothing here knows what a method computes; it takes the method table ``api`` builds.
"""
