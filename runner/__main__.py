"""`python -m runner`: Hydra reads the command line and composes the config; runner.run runs it.

Nothing heavy is imported here, so `--help` and `--cfg job` answer without loading torch.
"""

import hydra
from omegaconf import DictConfig

from runner.config import config_dir, schema

schema.register()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def main(cfg: DictConfig) -> None:
    from runner.run import main as run_main

    run_main(cfg)


if __name__ == "__main__":
    main()
