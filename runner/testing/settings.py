"""Where the user's config folder is: set by the pytest plugin, read by Model and
all_combinations. Plain Python: the plugin loads in every pytest session of anyone who
installs runner, so nothing heavy is imported here."""

from pathlib import Path

configured_dir: Path | None = None  # from runner_config_dir / --runner-config-dir


def config_dir(explicit: str | Path | None) -> Path | None:
    """The config folder to compose with: `explicit`, else the configured one, else None
    (runner's own conf/ only). Raises FileNotFoundError for a folder that is not there."""
    chosen = Path(explicit).resolve() if explicit is not None else configured_dir
    if chosen is not None and not chosen.is_dir():
        source = "config_dir" if explicit is not None else "runner_config_dir"
        raise FileNotFoundError(f"{source}: {str(chosen)!r} is not a folder")
    return chosen
