"""Training with Lightning: the LightningModule, in-memory data, the Trainer's arguments,
fit → test → verify (task=train), evaluation (task=eval), and the callbacks (`callbacks/`)."""
