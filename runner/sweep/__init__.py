"""Sweeps (`python -m runner -m ...`): the summary of every job (a Hydra callback, so it works
under every launcher), a job's part in resuming a sweep, and `python -m runner.sweep DIR`."""
