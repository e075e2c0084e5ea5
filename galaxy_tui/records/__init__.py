"""A run's records beside its training: notes and tags, filters over runs, configuration diffs and metrics
exported as CSV. Torch-free."""
