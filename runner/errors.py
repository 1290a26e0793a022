"""User-facing errors: every problem names its config key, the bad value and what is allowed."""

import difflib
import time
from collections.abc import Iterable

# The runner's stderr lines: `[HH:MM:SS] message`, from the logger and from plain prints alike.
LOG_FORMAT = "[%(asctime)s] %(message)s"
TIME_FORMAT = "%H:%M:%S"
# Set on an exception that escaped a run (a bug, not a config mistake): the CLI shows its
# traceback rather than a one-line message.
RAISED_IN_RUN = "runner_raised_in_run"


class ConfigError(Exception):
    """One or more problems in a user's config, reported together.

    Each problem reads `dotted.config.path: what is wrong; allowed: ...; did you mean ...?`.
    """

    def __init__(self, problems: Iterable[str]):
        self.problems = list(dict.fromkeys(problems))  # keep order, drop repeats
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        lines = [f"{len(self.problems)} problems in the config:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """`"; did you mean 'Linear'?"` for the closest choice, or "" when nothing is close."""
    if word is None:
        return ""
    word, options = str(word), [str(c) for c in choices]
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not matches:
        # Case slips (`linear` for `Linear`) score low with difflib; catch them separately.
        folded = {c.lower(): c for c in options}
        if word.lower() in folded:
            matches = [folded[word.lower()]]
    return f"; did you mean '{matches[0]}'?" if matches else ""


def missing_option(error: BaseException) -> str | None:
    """Hydra's MissingConfigException for `model=rgnett`, an option its group does not have,
    as the runner says it: `model: 'rgnett' is not one of its options; allowed: …; did you
    mean 'rgnet'?` (Hydra's own text lists the options one per line, then its search path).
    None for any other error."""
    missing, options = getattr(error, "missing_cfg_file", None), getattr(error, "options", None)
    if not missing or not options:
        return None
    group, _, name = str(missing).rpartition("/")
    text = str(error)
    where = text.split("':", 1)[0].removeprefix("In '") if text.startswith("In '") else ""
    ours = where in ("", "config") or where.startswith("hydra/")  # the command line's, Hydra's
    inside = "" if ours else f" (in the defaults list of {where})"
    close = did_you_mean(name, options)
    if not close and (group, name.split(":")[0]) in _OTHER_NAMES:  # torch's name for it
        close = f"; did you mean '{_OTHER_NAMES[group, name.split(':')[0]]}'?"
    return (
        f"{group or 'config'}: {name!r} is not one of its options{inside}; allowed: "
        f"{one_of(map(str, options), limit=40)}{close}"
    )


# Options that readers know by another name (torch's device names).
_OTHER_NAMES = {("device", "cuda"): "gpu"}


def nested_match(key: object, tree: object, prefix: str, depth: int = 4) -> str | None:
    """The dotted path (from `prefix`) of the shallowest key named `key` below `tree`'s own
    keys: `optim.optimizer.lr` for `optim.lr`, a key written a level too high (or in another
    part of the same section). None when there is none."""
    level = [(prefix, tree)]
    for below in range(depth):
        deeper = []
        for path, node in level:
            try:
                items = list(node.items()) if hasattr(node, "items") else []
            except Exception:  # a value that does not resolve: look elsewhere
                items = []
            deeper += [(f"{path}.{k}" if path else str(k), v) for k, v in items]
        found = [path for path, _ in deeper if path.rsplit(".", 1)[-1] == str(key)]
        if found and below:  # not `tree`'s own key (the unknown one itself, for a mapping)
            return found[0]
        level = deeper
    return None


def one_of(choices: Iterable[str], limit: int = 12) -> str:
    """A short, readable list of allowed values."""
    items = sorted(choices)
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def stamped(line: str) -> str:
    """`line` as the runner's log shows it: `[HH:MM:SS] line`."""
    return f"[{time.strftime(TIME_FORMAT)}] {line}"


def first_line(error: BaseException, default: str | None = None) -> str:
    """An exception's first line of text (its type's name, or `default`, when it has none)."""
    text = str(error).strip()
    return (
        text.splitlines()[0] if text else (default if default is not None else type(error).__name__)
    )


class RunFailed(Exception):
    """The run started but could not finish (e.g. NaN gradients); the message says what was kept.
    `outcome`: what its result.json records besides the error (a vectorized member's group)."""

    def __init__(self, message: str, outcome: dict[str, object] | None = None):
        super().__init__(message)
        self.outcome = outcome or {}


class Problems:
    """Collects problems while validating, so the user sees all of them at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def unknown_keys(
        self, section: str, keys: Iterable[object], known: Iterable[str], limit: int = 12
    ) -> bool:
        """A problem for each key not in `known`, at `section.key` (at `key` when the section
        is ""), with the allowed keys and a close match (for a mapping `keys`, also a key of
        that name deeper in it: `optim.optimizer.lr` for `optim.lr`). Returns whether there
        was one."""
        allowed = list(known)
        unknown = [str(k) for k in keys if str(k) not in allowed]
        for key in unknown:
            nested = nested_match(key, keys, section) if hasattr(keys, "items") else None
            close = did_you_mean(key, allowed) or (f"; did you mean '{nested}'?" if nested else "")
            self.add(
                f"{section}.{key}" if section else key,
                f"unknown key; allowed: {one_of(allowed, limit)}{close}",
            )
        return bool(unknown)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


class Interrupted(BaseException):
    """The run was stopped by a signal (SIGINT, SIGTERM). A BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int, checkpoint: object = None, step: int | None = None):
        self.signum, self.checkpoint, self.step = signum, checkpoint, step
        self.resume: str | None = None  # the command that resumes from `checkpoint`, once known
        super().__init__(signum)

    @property
    def name(self) -> str:
        import signal

        return signal.Signals(self.signum).name
