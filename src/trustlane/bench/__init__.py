"""Benchmarks whose figures go to docs/BENCHMARKS.md."""
