"""Where a run's worker runs besides this machine's process tree (the local supervisor): a Slurm cluster."""
