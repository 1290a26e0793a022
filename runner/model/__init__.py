"""Spec → a ready nn.Module: compile the grammar, then assemble (meta build → materialize →
reset → init rules → ties → edits); and task=inspect, which shows the result. No Lightning."""

from runner.model.assemble import build_net

__all__ = ["build_net"]
