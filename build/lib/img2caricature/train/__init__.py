"""Training loops. Shared pieces (run directory, checkpoints, metrics log, distributed
setup, the step loop) are composed by each trainer rather than inherited."""
