"""The statistics table of small CPU models, in numpy.

For a model of a few hundred parameters every torch op costs microseconds of dispatch whatever
its size, and the table takes some sixty of them; numpy's segment reductions (`reduceat` over
the tensors' contiguous stretches of one flat copy) do the same arithmetic in a fraction of the
time. Same columns, same NaN/Inf behaviour as the torch path in runner.params.stats, which a
test compares value for value.
"""

import numpy as np


def host_table(
    flat: np.ndarray,
    starts: np.ndarray,
    block_of: np.ndarray,
    blocks: int,
    grad_norms: np.ndarray | None,
    previous: np.ndarray | None,
    with_updates: bool,
) -> tuple[list[str], list[list[float]]]:
    """(statistic names, one row per tensor then per block) from the flat float64 copy of all
    tensors, each starting at `starts` (none empty). `grad_norms`: per tensor, NaN for none;
    None leaves the gradient column out. `previous`: the flat copy at the last call (update
    ratio; None: NaN, nothing to compare with yet)."""
    p = len(starts)
    numel = np.diff(np.append(starts, flat.size)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        additive = [
            np.add.reduceat(flat, starts),
            np.add.reduceat(flat * flat, starts),
            np.add.reduceat(flat == 0, starts, dtype=np.float64),
            np.add.reduceat(~np.isfinite(flat), starts, dtype=np.float64),
            numel,
        ]
        if grad_norms is not None:
            present = ~np.isnan(grad_norms)
            additive += [np.where(present, grad_norms * grad_norms, 0.0), present.astype(float)]
        if with_updates:
            if previous is None:
                additive.append(np.full(p, np.nan))
            else:
                delta = flat - previous
                additive.append(np.add.reduceat(delta * delta, starts))
        per_tensor = np.stack(additive, 1)
        per_block = np.zeros((blocks, per_tensor.shape[1]))
        np.add.at(per_block, block_of, per_tensor)
        a = np.concatenate([per_tensor, per_block])
        lo, hi = np.minimum.reduceat(flat, starts), np.maximum.reduceat(flat, starts)
        lo_block, hi_block = np.full(blocks, np.inf), np.full(blocks, -np.inf)
        np.minimum.at(lo_block, block_of, lo)
        np.maximum.at(hi_block, block_of, hi)
        s, sq, zeros, nonfinite, n = a[:, :5].T
        mean, norm = s / n, np.sqrt(sq)
        columns = {
            "mean": mean,
            "std": np.sqrt(np.clip(sq / n - mean * mean, 0, None)),  # population std
            "min": np.concatenate([lo, lo_block]),
            "max": np.concatenate([hi, hi_block]),
            "norm": norm,
            "zero_frac": zeros / n,
            "nonfinite": nonfinite,
        }
        if grad_norms is not None:  # columns 5 and 6: the squared norm, how many have one
            columns["grad_norm"] = np.where(a[:, 6] > 0, np.sqrt(a[:, 5]), np.nan)
        if with_updates:
            ratio = np.sqrt(a[:, -1]) / norm
            columns["update_ratio"] = np.where(norm > 0, ratio, 0.0)
    return list(columns), np.stack(list(columns.values()), 1).tolist()
