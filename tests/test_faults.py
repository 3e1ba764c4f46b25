"""Faults: full disks, read-only places, signals and kills leave one sentence and nothing half-written."""

import argparse
import builtins
import errno
import io
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from mat_keras import cli, io_utils
from mat_keras.commands import runs, train
from mat_keras.errors import Interrupted, InvalidArgumentError, OutputPathError
from mat_keras.export import files as export_files
from mat_keras.progress import Progress
from mat_keras.zoo.datasets.base import Dataset
from mat_keras.zoo.training import check_labels
from test_cli_errors import console_command, console_env

TIMEOUT = 240  # seconds; every subprocess is bounded


def _one_error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, lines
    return lines[0]


def _left_over(folder):
    """Every temporary name of mat-keras under `folder`."""
    return [
        os.path.join(root, name)
        for root, dirs, names in os.walk(folder)
        for name in dirs + names
        if ".partial-" in name or ".old-" in name or name.startswith((".tmp-", ".mat-keras-probe-"))
    ]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "mlp.keras"
    keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(path)
    return str(path)


@pytest.fixture(scope="module")
def big_model(tmp_path_factory):
    """A model of 10,240,000 weights: its export takes long enough to be interrupted."""
    path = tmp_path_factory.mktemp("big") / "big.keras"
    keras.Sequential([keras.Input((3200,)), keras.layers.Dense(3200, use_bias=False)]).save(path)
    return str(path)


# -- write failures ----------------------------------------------------------------------------


@pytest.fixture
def disk_full(monkeypatch):
    """Every file opened for writing fails its writes with ENOSPC, as on a full disk."""

    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_open, real_fdopen = builtins.open, os.fdopen

    def full_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if not set(mode) & set("wax+"):
            return handle
        handle.close()
        return io.BufferedWriter(Full()) if "b" in mode else io.TextIOWrapper(io.BufferedWriter(Full()))

    def full_fdopen(fd, mode="r", *args, **kwargs):
        if not set(mode) & set("wax+"):
            return real_fdopen(fd, mode, *args, **kwargs)
        os.close(fd)
        return io.BufferedWriter(Full()) if "b" in mode else io.TextIOWrapper(io.BufferedWriter(Full()))

    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(io, "open", full_open)
    monkeypatch.setattr(os, "fdopen", full_fdopen)


def test_export_on_a_full_disk_is_one_sentence_and_leaves_nothing(small_model, tmp_path, capsys, disk_full):
    assert cli.main(["export", small_model, str(tmp_path / "chip")]) == 2
    line = _one_error_line(capsys)
    assert line == f"mat-keras export: error: Cannot write '{tmp_path / 'chip'}': No space left on device.", line
    assert os.listdir(tmp_path) == []


def test_evaluate_on_a_full_disk_is_one_sentence_and_leaves_nothing(small_model, tmp_path, capsys, disk_full):
    out = tmp_path / "eval"
    argv = ["evaluate", small_model, "--task", "mnist-5k", "--sds", "0", "--draws", "1", "--out-dir", str(out)]
    assert cli.main(argv) == 2
    assert "No space left on device." in _one_error_line(capsys)
    assert _left_over(tmp_path) == [] and not os.listdir(out)


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder this process cannot write to (root writes anywhere but sysfs)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, "/sys"):
        try:
            io_utils.check_output_path(os.path.join(candidate, "x"), "probe")
        except OutputPathError:
            yield str(candidate)
            break
    else:
        pytest.skip("no read-only folder here")
    folder.chmod(0o755)


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "{model}", "{ro}/chip"],
        ["evaluate", "{model}", "--task", "mnist-5k", "--out-dir", "{ro}/eval"],
        ["train", "--task", "mnist-5k", "--save", "{ro}/mat.keras"],
        ["zoo", "build", "mnist-5k", "--out-dir", "{ro}/zoo"],
    ],
)
def test_a_read_only_target_is_refused_before_any_work(argv, small_model, read_only_dir, capsys, tmp_path,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [token.format(model=small_model, ro=read_only_dir) for token in argv]
    assert cli.main(argv) == 2
    line = _one_error_line(capsys)
    assert f"'{read_only_dir}/" in line and "cannot be written:" in line, line


def test_an_environment_oserror_anywhere_is_one_sentence(monkeypatch, capsys):
    def read_only(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/run")

    monkeypatch.setattr(train, "run", read_only)
    assert cli.main(["train", "--task", "mnist-5k"]) == 2
    assert _one_error_line(capsys) == "mat-keras train: error: Permission denied on '/data/run'."


# -- signals -----------------------------------------------------------------------------------


def test_sigterm_unwinds_like_ctrl_c_and_exits_143(monkeypatch, tmp_path, capsys):
    target = tmp_path / "sweep.json"

    def terminated_while_writing(args):
        with io_utils.atomic_write(target) as handle:
            handle.write("{")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(train, "run", terminated_while_writing)
    assert cli.main(["train", "--task", "mnist-5k"]) == 128 + signal.SIGTERM
    assert _one_error_line(capsys) == "mat-keras train: stopped by SIGTERM; unfinished files were removed."
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is previous  # the caller's handler is back


def _wait_for(predicate, process, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, f"the command ended first: {process.communicate()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _staging(folder):
    return [name for name in os.listdir(folder) if ".partial-" in name]


def _start(argv, cwd):
    return subprocess.Popen(console_command(*argv), cwd=cwd, env=console_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_during_export_removes_its_staging_folder(big_model, tmp_path):
    process = _start(["export", big_model, "chip"], tmp_path)
    try:
        _wait_for(lambda: _staging(tmp_path), process)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert err.strip().splitlines() == ["mat-keras export: stopped by SIGTERM; unfinished files were removed."]
    assert os.listdir(tmp_path) == []


def test_a_killed_exports_staging_folder_is_removed_by_the_next(big_model, small_model, tmp_path, capsys):
    process = _start(["export", big_model, "chip"], tmp_path)
    try:
        _wait_for(lambda: _staging(tmp_path), process)
        process.kill()  # SIGKILL: no clean-up can run
        process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    (stale,) = _staging(tmp_path)
    assert stale.startswith(f".chip.partial-{process.pid}-")  # never a folder that looks finished
    assert cli.main(["export", small_model, str(tmp_path / "chip"), "--format", "npz"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["chip"]


def test_sigterm_during_train_leaves_no_model_and_no_temporary_file(tmp_path):
    argv = ["train", "--task", "mnist-5k", "--epochs", "30", "--clean-epochs", "1", "--draws", "1", "--sds", "0",
            "--out-dir", "run", "--save", "run/mat.keras"]
    log = tmp_path / "stdout.txt"
    with open(log, "w") as stdout:
        process = subprocess.Popen(console_command(*argv), cwd=tmp_path, env=console_env(), text=True,
                                   stdout=stdout, stderr=subprocess.PIPE)
        try:
            _wait_for(lambda: "Epoch 2/" in log.read_text(), process)  # training has begun
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=TIMEOUT)
        finally:
            process.kill()
    assert process.returncode == 143, err
    # Whatever Keras prints while training, the stop is one sentence.
    assert err.strip().splitlines()[-1] == "mat-keras train: stopped by SIGTERM; unfinished files were removed."
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["stdout.txt"]  # no run/, no model, no .tmp- file


# -- stale temporary names ---------------------------------------------------------------------


@pytest.fixture
def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path, dead_pid):
    stale = tmp_path / f".tmp-{dead_pid}-ab12sweep.json"
    alive = tmp_path / f".tmp-{os.getpid()}-cd34sweep.json"
    other = tmp_path / f".tmp-{dead_pid}-ef56notes.txt"  # another target: not ours to judge
    for path in (stale, alive, other):
        path.write_text("")
    with io_utils.atomic_write(tmp_path / "sweep.json") as handle:
        handle.write("{}")
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other.name, "sweep.json"])


def test_stale_export_folders_are_removed_or_put_back(tmp_path, dead_pid):
    staging = tmp_path / f".chip.partial-{dead_pid}-00ff00ff"
    old = tmp_path / f".chip.old-{dead_pid}-11ee11ee"
    staging.mkdir()
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    # Killed between its two renames: the previous tables come back.
    export_files.recover_stale(tmp_path / "chip")
    assert sorted(os.listdir(tmp_path)) == ["chip"] and (tmp_path / "chip" / "manifest.json").exists()
    assert export_files.is_staging_folder(staging) and not export_files.is_staging_folder(tmp_path / "chip")


def test_an_interrupted_atomic_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(Interrupted):
        with io_utils.atomic_path(target) as tmp:
            open(tmp, "w").write("half")
            raise Interrupted(signal.SIGTERM)
    assert os.listdir(tmp_path) == ["model.keras"] and target.read_text() == "old"


# -- the argv pre-processor --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["export", "m", "c", "--g-min", "-1e-6"], ["export", "m", "c", "--g-min=-1e-6"]),
        (["train", "--times", "-1s", "--sds", "-0.1,0.2"], ["train", "--times=-1s", "--sds=-0.1,0.2"]),
        (["-task", "mnist-5k", "-seed", "-1"], ["-task", "mnist-5k", "-seed=-1"]),
        (["train", "--lr", "-inf"], ["train", "--lr=-inf"]),
        (["train", "--noise-s", "-1e-3"], ["train", "--noise-s=-1e-3"]),  # an abbreviation
        (["train", "--out-dir", "--task", "x"], ["train", "--out-dir", "--task", "x"]),  # a missing value
        (["train", "--out-dir", "-h"], ["train", "--out-dir", "-h"]),
        (["train", "--verbose", "-1"], ["train", "--verbose", "-1"]),  # a flag takes nothing
        (["train", "--", "--lr", "-1"], ["train", "--", "--lr", "-1"]),
        (["train", "--lr"], ["train", "--lr"]),
    ],
)
def test_attach_values(argv, expected):
    assert cli.attach_values(argv, cli.build_parser()) == expected


def test_no_option_is_a_flag_in_one_subcommand_and_takes_a_value_in_another():
    # attach_values reads one table of options for every subcommand.
    actions = list(_all_actions(cli.build_parser()))
    flags = {option for action in actions if action.nargs == 0 for option in action.option_strings}
    valued = {option for action in actions if action.nargs != 0 for option in action.option_strings}
    assert not flags & valued, flags & valued


def _all_actions(parser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                yield from _all_actions(subparser)


# -- quiet start, readable progress ------------------------------------------------------------


def test_the_command_alone_quiets_tensorflow():
    from mat_keras import _cli_startup

    assert _cli_startup.is_the_command(["/usr/local/bin/mat-keras", "train"], [])
    assert _cli_startup.is_the_command(["-m", "train"], ["python", "-m", "mat_keras.cli", "train"])
    assert not _cli_startup.is_the_command(["script.py"], ["python", "script.py"])
    environ = {}
    assert _cli_startup.quiet_tensorflow(["mat-keras", "train"], environ) and environ == {"TF_CPP_MIN_LOG_LEVEL": "3"}
    for argv, environ in ((["mat-keras", "-verbose"], {}), (["mat-keras"], {"TF_CPP_MIN_LOG_LEVEL": "0"})):
        assert not _cli_startup.quiet_tensorflow(argv, environ)


def test_progress_prints_one_line_per_level_to_a_file():
    stream = io.StringIO()
    progress = Progress(6, group=3, unit_name="draw", stream=stream)
    for sd, accuracies in ((0.0, (0.9, 0.9, 0.9)), (0.2, (0.5, 0.6, 0.7))):
        for accuracy in accuracies:
            progress.add(1, [("sd", sd), ("accuracy", accuracy)])
    assert stream.getvalue().splitlines() == [
        "sd 0 - accuracy 0.9 (3/6 draws)",
        "sd 0.2 - accuracy 0.6 (6/6 draws)",
    ]
    silent = io.StringIO()
    Progress(2, verbose=0, stream=silent).add(2, [("sd", 0.1)])
    assert silent.getvalue() == ""


def test_progress_is_a_keras_progress_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(Progress(4, stream=Terminal())._bar, keras.utils.Progbar)


# -- labels the sparse loss cannot take ---------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"y_test": np.zeros(10, "float32")}, "tiny: y_test holds float32 labels; the sparse cross-entropy needs"),
        ({"y_train": np.full(10, 12)}, "tiny: y_train holds labels from 12 to 12, outside the 10 classes 0..9."),
        ({"y_test": np.full(10, -1)}, "outside the 10 classes"),
        ({"y_test": np.zeros(3, "int64")}, "tiny: y_test: the inputs hold 10 examples but the labels 3."),
    ],
)
def test_labels_that_do_not_fit_are_one_sentence(change, message, small_model, monkeypatch, capsys, tmp_path):
    arrays = {"x_train": np.zeros((10, 28, 28)), "y_train": np.zeros(10, "int64"),
              "x_test": np.zeros((10, 28, 28)), "y_test": np.zeros(10, "int64")}
    data = Dataset(name="tiny", num_classes=10, input_shape=(28, 28), description="tiny", **{**arrays, **change})
    monkeypatch.setattr(runs, "load_dataset", lambda *args, **kwargs: data)
    argv = ["evaluate", small_model, "--task", "mnist-5k", "--draws", "1", "--out-dir", str(tmp_path / "eval")]
    assert cli.main(argv) == 2
    assert message in _one_error_line(capsys)
    with pytest.raises(InvalidArgumentError, match="tiny: "):
        check_labels(data)


def test_ctrl_c_unwinds_and_exits_130(monkeypatch, tmp_path, capsys):
    def interrupted_while_saving(args):
        with io_utils.atomic_path(tmp_path / "mat.keras") as tmp:
            open(tmp, "wb").write(b"PK")
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)

    monkeypatch.setattr(train, "run", interrupted_while_saving)
    assert cli.main(["train", "--task", "mnist-5k"]) == 130
    assert _one_error_line(capsys) == "mat-keras train: interrupted; unfinished files were removed."
    assert os.listdir(tmp_path) == []


def test_a_stop_signal_surfacing_as_another_exception_is_still_the_stop(monkeypatch, capsys):
    # TensorFlow's C boundary can turn the handler's exception into a SystemError
    # ("bad argument to internal function"): the command still stops as the signal asks.
    from mat_keras import cli
    from mat_keras.commands import evaluate
    from mat_keras.errors import Interrupted

    def run(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except Interrupted:
            raise SystemError("Objects/listobject.c:338: bad argument to internal function") from None

    monkeypatch.setattr(evaluate, "run", run)
    assert cli.main(["evaluate", "model.keras", "--task", "mnist-5k"]) == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in capsys.readouterr().err
