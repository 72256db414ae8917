"""One flag system (absl) for every entry point: a mistake is one line and exit status 2,
the data flags are the same everywhere, --resize follows --image_size, --help tells the
demo's values."""

import logging
import os
import subprocess
import sys

import pytest
from absl import flags

from alexnet_tf import data_stats, predict, prepare
from alexnet_tf.bench import __main__ as bench
from alexnet_tf.bench import e2e as bench_e2e
from alexnet_tf.bench import input as bench_input
from alexnet_tf.cli import app, configs, options
from alexnet_tf.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESIZE_LINE = "--resize {} (follows --image_size {} at the paper's 256/227)"


def parsed(define, *argv):
    fv = flags.FlagValues()
    define(fv)
    fv(["prog", *argv])
    return fv


def train_flags(*argv):
    return parsed(options.define_train_flags, *argv)


@pytest.mark.parametrize(
    "image_size, resize, expected",
    [(227, None, 256), (67, None, 76), (100, None, 113), (67, 256, 256), (227, 300, 300)],
)
def test_train_py_resize_follows_image_size_unless_given(
    tmp_path, caplog, image_size, resize, expected
):
    argv = ["--data_dir", str(tmp_path), "--image_size", str(image_size)]
    if resize is not None:
        argv += ["--resize", str(resize)]
    with caplog.at_level(logging.INFO, logger="alexnet_tf.cli.configs"):
        cfg = configs.train_config(train_flags(*argv))
    assert (cfg.data.image_size, cfg.data.resize) == (image_size, expected)
    logged = [r.getMessage() for r in caplog.records if "--resize" in r.getMessage()]
    assert logged == ([] if resize else [RESIZE_LINE.format(expected, image_size)])


def test_the_demo_keeps_its_values_and_its_resize_follows_a_given_image_size(caplog):
    with caplog.at_level(logging.INFO, logger="alexnet_tf.cli.configs"):
        cfg = configs.train_config(train_flags())
    assert cfg.data.image_size == options.DEMO_DEFAULTS["image_size"] == 67
    assert cfg.data.resize == options.DEMO_DEFAULTS["resize"] == 76
    assert (cfg.train.epochs, cfg.train.batch_size) == (5, 32)
    assert (cfg.train.checkpoint_every, cfg.train.plateau_patience) == (200, 2)
    assert RESIZE_LINE.format(76, 67) in caplog.messages
    # Before, the demo's 76 stayed and --image_size 100 stopped with "--resize 76 is smaller".
    assert configs.train_config(train_flags("--image_size", "100")).data.resize == 113


@pytest.mark.parametrize(
    "define",
    [
        prepare.define_flags,
        data_stats.define_flags,
        bench_input.define_flags,
        bench_e2e.define_flags,
    ],
)
def test_every_command_that_reads_data_takes_the_same_data_flags(tmp_path, caplog, define):
    fv = parsed(define, "--data_dir", str(tmp_path))
    train = train_flags()
    assert {"data_dir", "dataset", "resize"} <= set(fv)
    for name in set(fv) & set(options.DATA_FLAGS):
        assert (fv[name].default, type(fv[name])) == (train[name].default, type(train[name]))
    assert configs.data_config(fv).resize == 256
    with pytest.raises(UserError, match="--resize 0 must be positive"):  # cli's checks
        configs.data_config(parsed(define, "--data_dir", str(tmp_path), "--resize", "0"))
    if "image_size" in fv:  # the benches crop: --resize follows --image_size
        with caplog.at_level(logging.INFO, logger="alexnet_tf.cli.configs"):
            fv = parsed(define, "--data_dir", str(tmp_path), "--image_size", "67")
            assert configs.data_config(fv).resize == 76
        assert RESIZE_LINE.format(76, 67) in caplog.messages
        with pytest.raises(UserError, match="--image_size 66 is below 67"):
            configs.data_config(parsed(define, "--data_dir", str(tmp_path), "--image_size", "66"))


def test_the_resize_line_waits_for_the_work_so_a_mistake_stays_one_line():
    shown = []

    class Handler(logging.Handler):
        def emit(self, record):
            shown.append(record.getMessage())

    handler = Handler()
    handler.addFilter(app._OursHoldingNotes(handler))

    def record(name, message, level=logging.INFO):
        return logging.LogRecord(name, level, __file__, 0, message, None, None)

    handler.handle(record("alexnet_tf.cli.configs", RESIZE_LINE.format(76, 67)))
    handler.handle(record("tensorflow", "chatter"))
    assert shown == []  # a mistake now would be the only line
    handler.handle(record("alexnet_tf.distribute.strategies", "strategy one_device"))
    handler.handle(record("alexnet_tf.cli.configs", "later"))
    handler.handle(record("absl", "a warning", logging.WARNING))
    assert shown == [RESIZE_LINE.format(76, 67), "strategy one_device", "later", "a warning"]


def test_train_help_tells_the_demos_values():
    fv = train_flags()
    for name, value in options.DEMO_DEFAULTS.items():
        assert fv[name].help.endswith(f"(demo: {value})"), name
    assert fv["epochs"].help == "Epochs (paper: 90). (demo: 5)"


COMMANDS = {
    "predict": (predict.main, ["x.jpg"]),
    "prepare": (prepare.main, ["--output_dir", "out"]),
    "data_stats": (data_stats.main, []),
    "bench input": (bench.main, ["input"]),
    "bench train": (bench.main, ["train"]),
    "bench e2e": (bench.main, ["e2e"]),
    "bench eval": (bench.main, ["eval"]),
}
MISTAKES = {  # flags, text of the one line
    "bad value": (["--batch_size", "abc"], "--batch_size=abc"),
    "unknown": (["--batch_sise", "4"], "'batch_sise'"),
}


def one_error_line(stderr, names):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("mistake", MISTAKES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_flag_mistake_in_a_command_is_one_line_and_status_2(capsys, command, mistake):
    main, argv = COMMANDS[command]
    flags_given, names = MISTAKES[mistake]
    if command in ("predict", "data_stats", "prepare") and mistake == "bad value":
        flags_given, names = ["--resize" if command != "predict" else "--top", "abc"], "=abc"
    assert main([*argv, *flags_given]) == 2
    one_error_line(capsys.readouterr().err, names)


@pytest.mark.parametrize("command", [*COMMANDS, "bench"])
def test_help_of_a_command_lists_its_flags_and_exits_0(capsys, command):
    main, argv = COMMANDS.get(command, (bench.main, []))
    assert main([*argv[:1], "--help"]) == 0
    out = capsys.readouterr().out
    assert "--" in out and ("exit codes:" in out or command == "bench")


@pytest.mark.parametrize(
    "command, flags_given, names",
    [
        (["train.py"], ["--batch_size", "abc"], "--batch_size=abc"),
        (["train.py"], ["--strategy", "bogus"], "--strategy=bogus"),
        (["evaluate.py"], ["--batch_sise", "4"], "'batch_sise'"),
        (["-m", "alexnet_tf.predict"], ["x.jpg", "--top", "abc"], "--top=abc"),
        (["-m", "alexnet_tf.bench", "input"], ["--batch_sise", "4"], "'batch_sise'"),
        (["train.py"], ["--augment_on", "gpu"], "--augment_on=gpu"),
    ],
    ids=[
        "train-bad-int",
        "train-bad-enum",
        "evaluate-unknown",
        "predict-bad-int",
        "bench-unknown",
        "train-bad-augment-place",
    ],
)
def test_an_entry_point_reports_a_flag_mistake_in_one_line_with_status_2(
    command, flags_given, names
):
    done = subprocess.run(
        [sys.executable, *command, *flags_given],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 2, done.stderr
    one_error_line(done.stderr, names)


def test_train_py_takes_the_pooling_and_groups_ablations_and_refuses_other_values(tmp_path):
    cfg = configs.train_config(train_flags("--data_dir", str(tmp_path)))
    assert (cfg.model.pool_size, cfg.model.groups) == (3, 2)  # the paper's
    argv = ("--data_dir", str(tmp_path), "--pool_size", "2", "--groups", "1")
    cfg = configs.train_config(train_flags(*argv))
    assert (cfg.model.pool_size, cfg.model.groups) == (2, 1)
    for flag, value in (("--pool_size", "4"), ("--groups", "3")):
        with pytest.raises(UserError, match=f"{flag} {value} is not"):
            configs.train_config(train_flags("--data_dir", str(tmp_path), flag, value))


def test_train_py_takes_the_augmentations_place_and_defaults_to_auto(tmp_path):
    cfg = configs.train_config(train_flags("--data_dir", str(tmp_path)))
    assert cfg.data.augment_on == "auto"
    cfg = configs.train_config(train_flags("--data_dir", str(tmp_path), "--augment_on", "device"))
    assert cfg.data.augment_on == "device"
