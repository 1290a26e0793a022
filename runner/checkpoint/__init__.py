"""The checkpoint file and its trust, without Lightning: the format, atomic writes and safe
reads (`files`), where Lightning's dict keeps what (`layout`), what an embedded config may name
(`embedded`), the network rebuilt from a file (`restore`), the run's own check (`verify`),
resuming under another config (`resume`), and task=export (`export`)."""
