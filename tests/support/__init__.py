"""Helpers every test suite shares (``tests`` is on pytest's ``pythonpath``).

``support.procs`` is standard library plus pytest, for both interpreters (the 3.11
worker suite and the 3.13 client suites); ``support.calls`` drives a client ``Worker``
and is for the 3.13 suites only.
"""
