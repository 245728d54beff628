"""Benchmarks of the Stripe webhook: cold start, warm latency, bounded answer, burst, package size.

`python -m benchmarks.run_all` runs them all and appends the figures to benchmarks/RESULTS.md.
"""
