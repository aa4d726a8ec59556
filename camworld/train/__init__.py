"""Training: progressive stages, the generic training loop, checkpoints and distributed/context-parallel helpers."""
