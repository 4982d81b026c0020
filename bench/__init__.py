"""Benchmarks of Bastion against baselines measured in the same run: `python -m bench` (see README.md)."""
