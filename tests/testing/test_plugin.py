"""runner.testing as a user meets it: a project of their own with a config folder, tests of a
few lines, the pytest plugin finding the folder, and failures that say what and where."""

import pytest

pytest_plugins = ["pytester"]

MY_MLP = """\
defaults:
  - /schema/model@_here_
  - _self_

input_shape: [20]
net:
  - {type: Linear, in_features: 20, out_features: 64}
  - ReLU
  - {type: Linear, in_features: 64, out_features: 10}
"""
SMALL = """\
defaults:
  - /schema/init@_here_
  - _self_

rules:
  - {role: weight, init: normal, args: {std: 0.01}}
  - {role: bias, init: zeros}
"""
SHARED = """\
defaults:
  - /schema/model@_here_
  - _self_

input_shape: [4]
shared:
  mid: {type: Linear, in_features: 4, out_features: 4}
net:
  - {ref: mid}
  - ReLU
  - {ref: mid}
"""


@pytest.fixture
def project(pytester):
    """A user's project: conf/model/my_mlp.yaml, conf/init/small.yaml, and runner_config_dir."""
    pytester.makefile(".yaml", **{"conf/model/my_mlp": MY_MLP, "conf/init/small": SMALL})
    pytester.makefile(".yaml", **{"conf/model/twice": SHARED})
    pytester.makeini("[pytest]\nrunner_config_dir = conf\n")
    return pytester


def test_a_users_config_tests_pass_in_five_lines(project):
    project.makepyfile(
        test_mine="""
        import pytest
        from runner.testing import Model, all_combinations

        def test_my_mlp():
            m = Model("model=my_mlp", "init=small")
            m.assert_parameters(count=20 * 64 + 64 + 64 * 10 + 10, shapes={"0.weight": (64, 20)})
            m.assert_init("*.weight", std=0.01, rtol=0.2)
            m.assert_forward()
            m.assert_trains()

        def test_the_shared_layer_is_one_tensor():
            Model("model=twice").assert_ties(["0.weight", "2.weight"], ["0.bias", "2.bias"])

        @pytest.mark.parametrize("overrides", all_combinations(groups=["init"], model="my_mlp"))
        def test_every_init(overrides):
            Model(*overrides).assert_forward()

        def test_the_fixture(runner_config_dir):
            assert runner_config_dir.name == "conf"
        """
    )
    result = project.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3 + len(_inits()) + 1)  # every init: runner's and "small"
    result.stdout.fnmatch_lines(["*passed*"])


def _inits():
    from runner.testing.combinations import options

    return options("init")


def test_failures_read_like_the_runners_errors(project):
    project.makepyfile(
        test_wrong="""
        from runner.testing import Model

        def test_count():
            Model("model=my_mlp").assert_parameters(count=100)

        def test_std():
            Model("model=my_mlp", "init=small").assert_init("0.weight", std=0.5, rtol=0.2)

        def test_ties():
            Model("model=my_mlp").assert_ties(["0.weight", "2.weight"])

        def test_nan():
            Model("model=my_mlp", "init=constant", "init.rules.0.args.value=1e38").assert_forward()

        def test_typo():
            Model("model=my_mpl")

        def test_refused():
            Model("model=my_mlp", "model.net.0.type=Lineer")
        """
    )
    result = project.runpytest_subprocess("-q")
    result.assert_outcomes(failed=6)
    result.stdout.fnmatch_lines_random(
        [
            "*AssertionError: model=my_mlp: 1,994 parameters, expected 100 (shared tensors count once)",
            "*AssertionError: model=my_mlp init=small: 0.weight: std 0.01*, expected 0.5 ± 20%",
            "*AssertionError: model=my_mlp: 0.weight: shares one tensor with none, expected [[]'2.weight']",
            "*AssertionError: model=my_mlp init=constant init.rules.0.args.value=1e38: forward on [[]2, 20]: * of 20 outputs are NaN/Inf",
            "*AssertionError: model=my_mpl: config error: model: 'my_mpl' is not one of its options; allowed: *my_mlp*; did you mean 'my_mlp'?",
            "*AssertionError: model=my_mlp model.net.0.type=Lineer: the runner refuses it:*",
        ]
    )
    assert "runner/testing/model.py" not in result.stdout.str()  # the user's line, not ours


def test_an_unknown_group_and_a_missing_folder_say_so(pytester):
    pytester.makeini("[pytest]\nrunner_config_dir = nowhere\n")
    pytester.makepyfile(
        test_x="""
        import pytest
        from runner.testing import Model, all_combinations

        def test_group():
            with pytest.raises(ValueError, match="no config group 'modle'.*did you mean 'model'"):
                all_combinations(groups=["modle"], config_dir=".")

        def test_folder():
            with pytest.raises(FileNotFoundError, match="runner_config_dir: .*nowhere.* is not a folder"):
                Model("model=mlp")
        """
    )
    pytester.mkdir("model")
    pytester.runpytest_subprocess("-q").assert_outcomes(passed=2)
