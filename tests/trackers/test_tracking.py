"""Experiment trackers for real: MLflow's SQLite store read back with MLflow's own client, and
W&B's offline run directory. One tracker run per runner run (fit and test in it), one MLflow
experiment per sweep, and the run's outcome as the tracker's status."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import runner
from runner import RunFailed
from runner.run import run
from tests.conftest import ROOT

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

FAST = ("device=cpu", "trainer.max_epochs=2")


def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="module")
def made_store(tmp_path_factory):
    """`made_store(tmp_path)`: a store in tmp_path, as store() names it, with MLflow's tables
    already made (its migrations take seconds for each new store): a copy of one made once, for
    the tests whose subject is not a store's first use."""
    made = tmp_path_factory.mktemp("made")
    MlflowClient(store(made)).search_experiments()

    def copy(tmp_path: Path) -> str:
        shutil.copyfile(made / "mlflow.db", tmp_path / "mlflow.db")
        return store(tmp_path)

    return copy


def runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, [e.name for e in client.search_experiments()]
    return client.search_runs([found.experiment_id], order_by=["attributes.run_name"])


def artifacts(uri: str, run_id: str, folder: str | None = None) -> set[str]:
    paths = set()
    for item in MlflowClient(uri).list_artifacts(run_id, folder):
        paths |= artifacts(uri, run_id, item.path) if item.is_dir else {item.path}
    return paths


def test_mlflow_holds_the_config_every_stage_s_metrics_and_the_plots(tmp_path):
    uri = store(tmp_path)
    run_dir = tmp_path / "run"
    cfg = runner.compose([*FAST, "logger=[csv,mlflow]", f"logger.mlflow.tracking_uri={uri}"])
    result = run(cfg, run_dir)

    (tracked,) = runs(uri, "runner")
    assert tracked.info.status == "FINISHED"
    assert tracked.info.run_name == f"{tmp_path.name}/run"  # as outputs/<date>/<time> shows
    assert tracked.data.tags["runner.run_dir"] == str(run_dir)
    params = tracked.data.params
    assert (
        params["config/model/input_shape"] == "[20]"
        and params["config/optim/optimizer/lr"] == "0.1"
    )
    assert params["config/trainer/max_epochs"] == "2"
    metrics = tracked.data.metrics  # the fit's and the test stage's, in one run
    for name in ("train/loss", "val/loss", "test/loss"):
        assert metrics[name] == pytest.approx(result["metrics"][name], rel=1e-6), name
    assert any(k.startswith("stats/") for k in metrics)  # the parameter statistics too
    history = MlflowClient(uri).get_metric_history(tracked.info.run_id, "val/loss")
    assert len(history) == 2  # one per epoch
    assert artifacts(uri, tracked.info.run_id) == {
        "plots/blocks.png",
        "plots/weights.png",
        "param_stats.csv",
        "result.json",
    }
    # Artifacts sit next to the database, not in ./mlruns of the working directory.
    assert (tmp_path / "mlartifacts").is_dir() and not (Path.cwd() / "mlruns").exists()


def test_a_failed_run_is_failed_in_mlflow_and_keeps_what_it_made(tmp_path, made_store):
    uri = made_store(tmp_path)
    cfg = runner.compose(
        [*FAST, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}", "optim.optimizer.lr=1e30"]
    )
    with pytest.raises(RunFailed):
        run(cfg, tmp_path / "run")
    (tracked,) = runs(uri, "runner")
    assert tracked.info.status == "FAILED"
    assert {"param_stats.csv", "result.json"} <= artifacts(uri, tracked.info.run_id)
    recorded = MlflowClient(uri).download_artifacts(
        tracked.info.run_id, "result.json", str(tmp_path)
    )
    failure = json.loads(Path(recorded).read_text())
    assert failure["status"] == "failed" and "non-finite gradient" in failure["error"]


def test_eval_is_its_own_mlflow_run_with_the_split_s_metrics(tmp_path, made_store):
    uri = made_store(tmp_path)
    trained = run(runner.compose([*FAST, "data=digits", "model=mlp"]), tmp_path / "train")
    cfg = runner.compose(
        [
            "device=cpu",
            "task=eval",
            f"ckpt_path={trained['checkpoints']['last']}",
            "logger=mlflow",
            f"logger.mlflow.tracking_uri={uri}",
            "logger.mlflow.experiment_name=evaluations",
            "logger.mlflow.tags={team:vision}",
        ]
    )
    result = run(cfg, tmp_path / "eval")
    (tracked,) = runs(uri, "evaluations")
    assert tracked.info.run_name == f"eval {tmp_path.name}/eval"
    assert tracked.info.status == "FINISHED"
    assert tracked.data.tags["team"] == "vision" and tracked.data.tags["runner.task"] == "eval"
    assert tracked.data.metrics["test/acc"] == pytest.approx(result["metrics"]["test/acc"])
    assert result["metrics"]["test/acc"] == pytest.approx(trained["metrics"]["test/acc"])


@pytest.mark.slow
def test_a_parallel_sweep_is_one_mlflow_experiment_with_a_run_per_job(tmp_path):
    """Two joblib processes write to the default store (outputs/mlflow.db where the command
    ran): the sweep made it, and its experiment, before they started."""
    sweep_dir = tmp_path / "sweep"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "logger=mlflow",
            "model=mlp,rgnet",
            *FAST,
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    tracked = runs(uri, f"sweep {sweep_dir}")
    assert [r.info.run_name for r in tracked] == [  # what sets a job apart, not logger=
        f"0: model=mlp {' '.join(FAST)}",
        f"1: model=rgnet {' '.join(FAST)}",
    ]
    for number, job in enumerate(tracked):
        result = json.loads((sweep_dir / str(number) / "result.json").read_text())
        assert job.info.status == "FINISHED"
        assert job.data.tags["runner.job"] == str(number)
        assert job.data.metrics["test/loss"] == pytest.approx(result["metrics"]["test/loss"])
        assert job.data.params["config/model/input_shape"] == ("[20]" if number == 0 else "[4]")
        assert "plots/blocks.png" in artifacts(uri, job.info.run_id)


def test_wandb_writes_an_offline_run_with_metrics_config_and_plots(tmp_path, cli):
    pytest.importorskip("wandb")
    done = cli(*FAST, "logger=[csv,wandb]")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == ""  # W&B does not capture the console: stdout holds reports only
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    assert f"wandb sync {offline}" in done.stderr
    files = offline / "files"
    assert (files / "plots" / "blocks.png").is_file() and (files / "param_stats.csv").is_file()
    (records,) = offline.glob("run-*.wandb")  # W&B's own record log, read back as bytes
    data = records.read_bytes()
    for name in (b"train/loss", b"val/loss", b"test/loss", b"input_shape"):
        assert name in data, name
    assert (tmp_path / "run" / "logs" / "metrics.csv").is_file()  # csv beside it, untouched
    assert "WANDB_MODE" not in os.environ  # Lightning's offline switch did not leak


def test_tracker_options_are_checked_with_the_key_and_what_is_allowed(tmp_path, cli):
    done = cli(
        "device=cpu",
        "logger=[mlflow,wandb]",
        "+logger.mlflow.trackng_uri=x",
        "logger.wandb.offline=maybe",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        "logger.mlflow.trackng_uri: the mlflow logger takes no option 'trackng_uri'; allowed: "
        "experiment_name, run_name, tags, tracking_uri; did you mean 'tracking_uri'?"
    ) in done.stderr
    assert "logger.wandb.offline: expected true or false; got 'maybe'" in done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("missing", ["mlflow", "wandb", "sqlalchemy"])
def test_a_missing_tracker_says_how_to_install_it(monkeypatch, missing):
    import importlib.util

    from runner.config.loggers import check_loggers
    from runner.errors import Problems

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else find_spec(name)
    )
    problems = Problems()
    check_loggers({"mlflow": {"tracking_uri": None}, "wandb": {}}, problems)
    expected = {
        "mlflow": "logger.mlflow: mlflow is not installed; pip install 'runner[mlflow]' "
        "(or make setup EXTRAS=mlflow)",
        "wandb": "logger.wandb: wandb is not installed; pip install 'runner[wandb]' "
        "(or make setup EXTRAS=wandb)",
        "sqlalchemy": "logger.mlflow: MLflow's SQLite store needs sqlalchemy and alembic; not "
        "installed: sqlalchemy; pip install 'runner[mlflow]' (or make setup EXTRAS=mlflow)",
    }
    assert problems.items == [expected[missing]]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "bogus://x",
            "logger.mlflow.tracking_uri: not a tracking URI MLflow can store runs in; got "
            "'bogus://x'; allowed: a URI of databricks, http, https, mssql, mysql, postgresql, "
            "sqlite, e.g. sqlite:///path/to/mlflow.db, http://host:5000, postgresql://…",
        ),
        (
            "/tmp/runs",
            "logger.mlflow.tracking_uri: not a tracking URI MLflow can store runs in (MLflow 3 "
            "no longer keeps runs in a plain directory); got '/tmp/runs'; allowed: a URI of "
            "databricks, http, https, mssql, mysql, postgresql, sqlite, e.g. "
            "sqlite:///path/to/mlflow.db, http://host:5000, postgresql://…",
        ),
        (
            "sqlite:mlflow.db",
            "logger.mlflow.tracking_uri: a SQLite URI is sqlite:///<path>; got 'sqlite:mlflow.db'",
        ),
    ],
)
def test_a_uri_mlflow_cannot_store_runs_in_is_a_config_error(tmp_path, uri, expected):
    with pytest.raises(runner.ConfigError) as info:
        run(runner.compose([*FAST, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}"]), tmp_path)
    assert info.value.problems == [expected]


def test_option_values_are_checked_item_by_item(tmp_path):
    cfg = runner.compose(
        [
            *FAST,
            "logger=[mlflow,wandb]",
            "logger.wandb.tags=[1,ok]",
            "logger.wandb.offline=yes",
            "logger.mlflow.experiment_name=5",
            "logger.mlflow.tags={team:[a]}",
        ]
    )
    with pytest.raises(runner.ConfigError) as info:
        run(cfg, tmp_path)
    assert sorted(info.value.problems) == [
        "logger.mlflow.experiment_name: expected a string or null; got 5",
        "logger.mlflow.tags.team: expected a string or number; got ['a']",
        "logger.wandb.offline: expected true or false; got 'yes'",
        "logger.wandb.tags[0]: expected a string; got 1",
    ]


@pytest.mark.parametrize("store", ["unwritable", "not a database", "server down"])
def test_a_store_that_cannot_be_opened_is_named_before_anything_is_built(tmp_path, store):
    import time

    (tmp_path / "notes.db").write_text("not a database\n")
    uri = {
        "unwritable": "sqlite:////proc/runner-nope/mlflow.db",
        "not a database": f"sqlite:///{tmp_path / 'notes.db'}",
        "server down": "http://127.0.0.1:9",
    }[store]
    start = time.perf_counter()
    with pytest.raises(runner.ConfigError) as info:
        run(
            runner.compose([*FAST, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}"]),
            tmp_path / "run",
        )
    (problem,) = info.value.problems
    assert problem.startswith(
        f"logger.mlflow.tracking_uri: cannot open MLflow's store at '{uri}': "
    )
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert time.perf_counter() - start < 60  # one attempt, not MLflow's minutes of retries


def test_an_experiment_deleted_in_the_ui_is_restored(tmp_path, made_store):
    uri = made_store(tmp_path)
    cfg = runner.compose([*FAST, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}"])
    run(cfg, tmp_path / "a")
    client = MlflowClient(uri)
    client.delete_experiment(client.get_experiment_by_name("runner").experiment_id)
    run(cfg, tmp_path / "b")
    assert client.get_experiment_by_name("runner").lifecycle_stage == "active"
    assert len(runs(uri, "runner")) == 2


def test_runs_reaching_a_new_store_at_once_all_get_the_experiment(tmp_path):
    """Several processes create the same new SQLite store and experiment at the same moment:
    the losers of the race retry instead of failing."""
    uri = store(tmp_path)
    code = (
        "import sys; from runner.trackers.mlflow_store import mlflow_experiment; "
        f"print(mlflow_experiment({uri!r}, 'together'))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in started]
    assert [p.returncode for p in started] == [0] * 4, [err[-800:] for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1  # one experiment, the same id


def test_wandb_streaming_without_a_login_is_named_before_anything_is_built(tmp_path):
    pytest.importorskip("wandb")
    # A fresh process with no saved login and no W&B settings from other tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            *FAST,
            "logger=wandb",
            "logger.wandb.offline=false",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "config error: logger.wandb: W&B could not start a run: " in done.stderr
    assert (
        "(streaming needs `wandb login`; logger.wandb.offline=true writes it here)" in done.stderr
    )
    assert not (tmp_path / "run" / "checkpoints").exists()
