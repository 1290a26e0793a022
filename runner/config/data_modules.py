"""What a data module is, by name: the runner's data modules live in the training code
(runner.train.data), above this package, and Lightning is not loaded below it."""

from runner.config.classes import classes_in
from runner.errors import did_you_mean

# The base class of the runner's data modules, named rather than imported (a test keeps the
# name true): code below runner.train checks classes against it without loading Lightning.
DATA_BASE = "runner.train.data.InMemoryData"
# Where the runner's own data modules are, for a close match to a misspelled one.
DATA_HOMES = ("runner.train.data", "runner.train.data_digit_images", "runner.train.data_table")

# Any LightningDataModule is data too (runner.train.data_user drives it), named for the same
# reason; a test keeps the names true.
LIGHTNING_DATA = (
    "pytorch_lightning.core.datamodule.LightningDataModule",
    "lightning.pytorch.core.datamodule.LightningDataModule",
)


def is_data_module(cls: object) -> bool:
    """Whether `cls` is a class derived from the runner's data module base (DATA_BASE) or
    from Lightning's LightningDataModule."""
    mro = getattr(cls, "__mro__", ()) if isinstance(cls, type) else ()
    names = {f"{c.__module__}.{c.__qualname__}" for c in mro}
    return DATA_BASE in names or any(name in names for name in LIGHTNING_DATA)


def not_a_data_module(target: object, found: object) -> str:
    """A `_target_` that names no data module: what it is, and the closest data module in its
    own module or the runner's."""
    module = str(target).rpartition(".")[0]
    candidates = [n for m in (module, *DATA_HOMES) for n in classes_in(m, is_data_module)]
    what = "cannot be imported" if found is type(None) else "is not a data module"
    close = did_you_mean(target, dict.fromkeys(candidates))
    for cls, option in _shipped_options().items():
        if close == f"; did you mean '{cls}'?":  # its option sets the model's sizes too
            close = f"; did you mean data={option} (whose data module is {cls})?"
    return (
        f"{target!r} {what}; allowed: the runner's (runner.train.data.*, data=table) or any "
        "LightningDataModule subclass (with imports=[its module])" + close
    )


def _shipped_options() -> dict[str, str]:
    """Each shipped data option's data module: {'runner.train.data.Digits': 'digits', …}."""
    from omegaconf import OmegaConf

    from runner.config.tree import config_dir

    options: dict[str, str] = {}
    for path in sorted((config_dir() / "data").glob("*.yaml")):
        node = OmegaConf.load(path)
        target = OmegaConf.select(node, "data._target_") or OmegaConf.select(node, "_target_")
        if isinstance(target, str) and target != "???":
            options.setdefault(target, path.stem)
    return options
