"""Benchmarks of the Stripe webhook and the TikTok sender behind it: cold start, warm latency, the
webhook with TikTok hanging, the sender's latency through the stream, burst, package size.

`python -m benchmarks.run_all` runs them all and appends the figures to benchmarks/RESULTS.md.
"""
