"""The RPC methods: their declarations, parameter binding, handlers and the HTML report.

Handlers check and convert what a client sent, then call ``engine`` (or the Dask
gateway); they never read sockets or schedule work.
"""
