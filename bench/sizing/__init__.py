"""The capacity model, the stack probe and the tables of ``bench.capacity``.

A package, not modules of ``bench/``, so that ``bench/*.py`` stays one script per figure.
"""
