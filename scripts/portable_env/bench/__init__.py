"""Benchmark the pipeline and compare every figure with its lower bound (scripts/bench).

Workload: projects/example (numpy, scipy, pandas, scikit-learn) against the
local channel (build/channel, built with ``make channel`` when missing), in a
throwaway copy of the repository under OUT/repo (the benchmark never touches
build/example or dist/ of the checkout, and edits made to the checkout
meanwhile do not change what is measured), plus a synthetic large project
generated under OUT/synthetic for the scan.

Each figure is the median of --runs runs, and its ratio to a lower bound
measured in the same run on the same bytes (interleaved with the runs), in
wall time (``ratio``) and in CPU time (``cpu_ratio``: user + system of the
processes, much less disturbed by other work on a shared machine). Modules:
``measure`` (samples, figures, running commands), ``workspace`` (the
repository copy and its make calls), ``machine``, ``builds`` (cold and warm
builds, the no-op), ``archives`` (pack and verify), ``imports``,
``synthetic`` (the generated project and the scan), ``report`` (markdown) and
``runner`` (all sections, the results files).
"""
