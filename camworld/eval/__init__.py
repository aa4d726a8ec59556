"""Evaluation of trained models against the procedural world's ground truth (benchmarks import from here)."""
