"""`make bench`: a benchmark database at scale, and the speed/memory measurements (docs/benchmarks.md).

Not part of `make test` (pyproject's addopts ignore this folder). Entry point:
`python -m tests.benchmarks.run` (see run.py for the knobs).
"""
