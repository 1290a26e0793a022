"""Training with Lightning: the LightningModule, in-memory data, fit → test → verify (task=train),
the statistics callback and NaN/Inf guard, checkpoint files, reloading, export, and plots."""
