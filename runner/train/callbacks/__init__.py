"""The runner's own Lightning callbacks: checkpoints, a graceful stop, the NaN/Inf guard, the
parameter statistics, and where the parameters live."""
