"""Memory planning: predicted peak memory of a generation run, per phase (`memory`), and its measurement (`measure`)."""
