"""Synthetic training data: sharded clips rendered from procedural worlds, their validation, and a clip Dataset."""
