"""Integration tests on real builders: a cachefix rewrite must make the second build download nothing.

The harness modules here are also imported by ``benchmarks/bandwidth.py``.
"""
