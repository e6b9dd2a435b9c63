"""Benchmarks (not tests): see benchmarks/run.py."""
