"""Curation of a finished run's dataset through its embedding: similar galaxies, likely wrong labels, what to
label next and the odd ones out. Torch-free: the worker's curate job (train/curation_job.py) embeds the galaxies
and hands the arrays here; the UI and the CLI read what this room wrote."""
