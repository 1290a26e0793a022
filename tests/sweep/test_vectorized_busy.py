"""hydra/launcher=vectorized on a busy machine: the group's batched operations are split over
torch's threads, which then wait on each other, so the launcher says how to keep it steady
(and changes nothing itself: the threads' count sets the results' last bits)."""

import logging
import os

import pytest
import torch

from runner.sweep import vectorized


@pytest.mark.parametrize(
    ("load", "threads", "warned"), [(9.0, 2, True), (0.2, 2, False), (9.0, 1, False)]
)
def test_a_busy_machine_is_said_with_the_cure(monkeypatch, caplog, load, threads, warned):
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    with caplog.at_level(logging.WARNING, logger="runner"):
        vectorized._warn_if_busy(torch.device("cpu"))
    said = "vectorized: this machine is busy (load 9.0 on 2 cores)" in caplog.text
    assert said == warned
    assert not warned or "OMP_NUM_THREADS=1 keeps it steady" in caplog.text
