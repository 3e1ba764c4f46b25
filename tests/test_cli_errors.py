"""Bad command lines: one sentence on stderr and exit status 2, before any data loads or any model trains.

`BAD_COMMAND_LINES` doubles as documentation: every option of every
subcommand with a value it refuses, and every kind of file it reads given
broken. `{name}` stands for a file of `_FILES` (made by the `files` fixture),
`{work}` for an empty folder the command must leave empty.
"""

import os
import random
import subprocess
import sys
import zipfile

import keras
import pytest

from mat_keras import cli
from mat_keras.commands import runs
from mat_keras.export import cli as export_cli

M = ["--task", "mnist-5k"]

# (command line, the sentence's substance)
BAD_COMMAND_LINES = [
    # train: numbers
    (["train", *M, "--lr", "nan"], "--lr must be a finite learning rate > 0, got nan."),
    (["train", *M, "--lr", "inf"], "--lr must be a finite learning rate > 0, got inf."),
    (["train", *M, "--lr", "0"], "--lr must be a finite learning rate > 0, got 0.0."),
    (["train", *M, "--lr", "-1e-3"], "--lr must be a finite learning rate > 0, got -0.001."),
    (["train", *M, "--lr=-1e-3"], "--lr must be a finite learning rate > 0, got -0.001."),
    (["train", *M, "--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["train", *M, "--noise-sd", "-1e-3"], "--noise-sd must be a finite number >= 0, got -0.001."),
    (["train", *M, "--noise-sd=-0.2"], "--noise-sd must be a finite number >= 0, got -0.2."),
    (["train", *M, "--noise-sd", "inf"], "--noise-sd must be a finite number >= 0, got inf."),
    (["train", *M, "--noise-s", "-1e-3"], "--noise-sd must be a finite number >= 0, got -0.001."),
    (["-task", "mnist-5k", "-noise_sd", "-1e-3"], "--noise-sd must be a finite number >= 0, got -0.001."),
    (["train", *M, "--epochs", "-1"], "--epochs must be >= 1, got -1."),
    (["train", *M, "--epochs", "2.5"], "argument --epochs/-epochs: invalid int value: '2.5'"),
    (["-task", "mnist-5k", "-epochs", "-3"], "--epochs must be >= 1, got -3."),
    (["train", *M, "--clean-epochs", "-1"], "--clean-epochs must be >= 0, got -1."),
    (["train", *M, "--epochs", "2", "--clean-epochs", "3"], "--clean-epochs (3) cannot exceed epochs (2)."),
    (["train", *M, "--epochs", "5"], "--clean-epochs (20) cannot exceed epochs (5)."),
    (["train", *M, "--clip-w", "-1e-3"], "clip_w must be a finite number >= 0, got -0.001."),
    (["train", *M, "--clip-w", "nan"], "clip_w must be a finite number >= 0, got nan."),
    (["-task", "mnist-5k", "-clip_w", "-2.5"], "clip_w must be a finite number >= 0, got -2.5."),
    (["train", *M, "--batch-size", "0"], "--batch-size must be >= 1, got 0."),
    (["train", *M, "--batch-size", "-32"], "--batch-size must be >= 1, got -32."),
    (["train", *M, "--draws", "-1"], "--draws must be >= 1, got -1."),
    (["train", *M, "--sds", "0,nan"], "each of --sds must be a finite number >= 0, got nan."),
    (["train", *M, "--sds", "0,inf"], "each of --sds must be a finite number >= 0, got inf."),
    (["train", *M, "--sds", "-0.1"], "each of --sds must be a finite number >= 0, got -0.1."),
    (["train", *M, "--sds", "-1e-3,0.1"], "each of --sds must be a finite number >= 0, got -0.001."),
    (["train", *M, "--sds", "0,-0.1"], "each of --sds must be a finite number >= 0, got -0.1."),
    (["train", *M, "--sds", ","], "--sds must list at least one noise level"),
    (["train", *M, "--sds", "low,high"], "expected comma-separated numbers, got 'low,high'"),
    (["train", *M, "--seed=-1"], "--seed must be an integer from 0 to 4294967295, got -1."),
    (["train", *M, "-seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1."),
    (["train", *M, "--seed", "1e3"], "argument --seed/-seed: invalid int value: '1e3'"),
    # train: names and choices
    (["train", "--task", "imagenet"], "Unknown task 'imagenet'; known tasks:"),
    (["train", *M, "--model", "cnn"], "Task 'mnist-5k' has no model 'cnn'; its models: mlp."),
    (["train", *M, "--encoding", "up"], "argument --encoding: invalid choice: 'up'"),
    (["train", *M, "--records", "-208"], "--records and --encoding apply to the ecg task only."),
    (["train", "--lr", "0.1"], "the following arguments are required: --task/-task"),
    (["train", *M, "--noise", "pcm", "--noise-sd", "0.1"], "Give --noise or --noise-sd, not both."),
    (["train", *M, "--noise", "telegraph"], "Unknown noise model 'telegraph'; known aliases:"),
    # train: the crossbar (an alias, inline JSON settings or a .json file of them)
    (["train", *M, "--crossbar", "fancy"], "Unknown crossbar 'fancy'; known: ideal, standard."),
    (["train", *M, "--crossbar", "{{oops"], "The --crossbar JSON is not valid JSON"),
    (["train", *M, "--crossbar", "[1, 2]"], "The --crossbar JSON must hold a JSON object such as {{\"tile_rows\": 256}}"),
    (["train", *M, "--crossbar", '{{"tile_rows": 0}}'], "tile_rows must be >= 1, got 0."),
    (["train", *M, "--crossbar", '{{"tile_cols": -256}}'], "tile_cols must be >= 1, got -256."),
    (["train", *M, "--crossbar", '{{"input_bits": 2.5}}'], "input_bits must be an integer"),
    (["train", *M, "--crossbar", '{{"output_bound": 0}}'], "output_bound must be a finite number > 0, got 0"),
    (["train", *M, "--crossbar", '{{"input_range": -3}}'], "input_range must be a finite number > 0, got -3"),
    (["train", *M, "--crossbar", '{{"read_noise": -0.1}}'], "read_noise must be a finite number >= 0, got -0.1."),
    (["train", *M, "--crossbar", '{{"ir_drop": -1}}'], "ir_drop must be a finite number >= 0, got -1"),
    (["train", *M, "--crossbar", '{{"colour": 1}}'], "Bad crossbar settings {{'colour': 1}}: "),
    (["train", *M, "--crossbar", '{{"class_name": "Chip", "config": {{}}}}'],
     "--crossbar holds no crossbar config Keras can read: Could not locate class 'Chip'."),
    (["train", *M, "--crossbar", "{random_json}"], "The --crossbar file '{random_json}' is not text (byte 0x"),
    (["train", *M, "--crossbar", "{broken_json}"], "The --crossbar file '{broken_json}' is not valid JSON"),
    (["train", *M, "--crossbar", "{list_json}"], "The --crossbar file '{list_json}' must hold a JSON object"),
    (["train", *M, "--crossbar", "{work}/none.json"], "No --crossbar file at '{work}/none.json'."),
    # train: output paths, checked before training
    (["train", *M, "--save", "{afile}/m.keras"], "--save '{afile}/m.keras' cannot be created: '{afile}' is a file"),
    (["train", *M, "--save", "{folder_keras}"], "--save '{folder_keras}' is a folder; give a file name."),
    (["train", *M, "--save", "{work}/m.h5"], "--save must name a .keras file, got '{work}/m.h5'."),
    (["train", *M, "--out-dir", "{afile}"], "--out-dir '{afile}' is a file, not a folder."),
    (["train", *M, "--out-dir", "{afile}/run"], "--out-dir '{afile}/run' cannot be created: '{afile}' is a file"),
    (["train", *M, "--data-dir", "{afile}"], "--data-dir '{afile}' is a file, not a folder."),
    # train: files read
    (["train", *M, "--init", "{work}/missing.keras"], "No --init model file at '{work}/missing.keras'."),
    (["train", *M, "--init", "{empty_keras}"], "The --init model file '{empty_keras}' is empty (0 bytes)."),
    (["train", *M, "--init", "{folder_keras}"], "The --init model file '{folder_keras}' is a folder, not a file."),
    (["train", *M, "--init", "{random_keras}"],
     "Cannot read '{random_keras}' as a Keras model: it is not a .keras file (not a zip"),
    (["train", *M, "--init", "{truncated_keras}"],
     "Cannot read '{truncated_keras}' as a Keras model: it is truncated or corrupted"),
    (["train", *M, "--init", "{corrupted_keras}"],
     "Cannot read '{corrupted_keras}' as a Keras model: it is corrupted, its entry"),
    (["train", *M, "--init", "{zip_keras}"],
     "Cannot read '{zip_keras}' as a Keras model: a zip archive without config.json."),
    (["train", *M, "--noise", "{random_json}"], "The --noise file '{random_json}' is not text (byte 0x"),
    (["train", *M, "--noise", "{list_json}"], "The --noise file '{list_json}' must hold a JSON object"),
    (["train", *M, "--noise", "{number_json}"], "The --noise file '{number_json}' must hold a JSON object"),
    (["train", *M, "--noise", "{broken_json}"], "The --noise file '{broken_json}' is not valid JSON (Expecting"),
    (["train", *M, "--noise", "{empty_json}"], "The --noise file '{empty_json}' is empty (0 bytes)."),
    (["train", *M, "--noise", "{work}/none.json"], "No --noise file at '{work}/none.json'."),
    (["train", *M, "--noise", "[1, 2]"], "The --noise JSON must hold a JSON object"),
    (["train", *M, "--noise", "{{oops"], "The --noise JSON is not valid JSON"),
    (["train", *M, "--noise", "{negative_json}"], "programming noise sd must be a finite number >= 0, got -1."),
    (["train", *M, "--noise", "{unknown_json}"], "unexpected keyword argument 'colour'"),
    (["train", *M, "--noise", "{empty_csv}"], "The --noise measurements file '{empty_csv}' is empty (0 bytes)."),
    (["train", *M, "--noise", "{random_csv}"], "The --noise measurements file '{random_csv}' is not text"),
    (["train", *M, "--noise", "{header_csv}"], "{header_csv} holds no measurements."),
    (["train", *M, "--noise", "{columns_csv}"], "{columns_csv}, line 1: the header must name the columns"),
    (["train", *M, "--noise", "{text_csv}"], "{text_csv}, line 2: target_uS must be a finite number, got 'x'."),
    (["train", *M, "--noise", "{work}/none.csv"], "No --noise measurements file at '{work}/none.csv'."),
    # evaluate
    (["evaluate", "{model}", *M, "--draws", "0"], "--draws must be >= 1, got 0."),
    (["evaluate", "{model}", *M, "--sds", "-0.1"], "each of --sds must be a finite number >= 0, got -0.1."),
    (["evaluate", "{model}", *M, "--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1."),
    (["evaluate", "{model}", "--task", "imagenet"], "Unknown task 'imagenet'"),
    (["evaluate", "{model}", *M, "--out-dir", "{afile}"], "--out-dir '{afile}' is a file, not a folder."),
    (["evaluate", "{model}", *M, "--out-dir", "{afile}/x"], "cannot be created: '{afile}' is a file"),
    (["evaluate", "{model}", *M, "--times", "1s"], "--times needs --device."),
    (["evaluate", "{model}", *M, "--no-compensation"], "--no-compensation needs --device."),
    (["evaluate", "{model}", *M, "--device", "pcm", "--sds", "0"], "with --device give --times instead."),
    (["evaluate", "{model}", *M, "--device", "pcm", "--times", "-1s"],
     "each time must be a finite number of seconds >= 0, got -1.0."),
    (["evaluate", "{model}", *M, "--device", "pcm", "--times=-1d"],
     "each time must be a finite number of seconds >= 0, got -86400.0."),
    (["evaluate", "{model}", *M, "--device", "pcm", "--times", "soon"], "Cannot read 'soon' as a time"),
    (["evaluate", "{model}", *M, "--device", "pcm", "--times", "1s,nan"], "Cannot read 'nan' as a time"),
    (["evaluate", "{model}", *M, "--device", "pcm", "--times", ","], "--times must list at least one time"),
    (["evaluate", "{model}", *M, "--device", "pcm", "--draws", "-2"], "--draws must be >= 1, got -2."),
    (["evaluate", "{model}", *M, "--device", "telegraph"], "Unknown noise model 'telegraph'"),
    (["evaluate", "{model}", *M, "--device", "{random_json}"], "The --device file '{random_json}' is not text"),
    (["evaluate", "{model}", *M, "--device", "{list_json}"], "The --device file '{list_json}' must hold a JSON object"),
    (["evaluate", "{model}", *M, "--device", "{random_csv}"], "The --device measurements file '{random_csv}' is not"),
    (["evaluate", "{model}", *M, "--crossbar", "fancy"], "Unknown crossbar 'fancy'; known: ideal, standard."),
    (["evaluate", "{model}", *M, "--crossbar", '{{"output_noise": -0.04}}'],
     "output_noise must be a finite number >= 0, got -0.04."),
    (["evaluate", "{model}", *M, "--crossbar", '{{"input_steps": 0}}'], "input_steps must be >= 1, got 0."),
    (["evaluate", "{model}", *M, "--device", "pcm", "--crossbar", "{{oops"], "The --crossbar JSON is not valid JSON"),
    (["evaluate", "{model}", *M, "--device", "pcm", "--crossbar", '{{"tile_rows": 0}}'],
     "tile_rows must be >= 1, got 0."),
    (["evaluate", "{model}", *M, "--crossbar", "{empty_json}"], "The --crossbar file '{empty_json}' is empty (0 bytes)."),
    (["evaluate", "{work}/missing.keras", *M], "No model file at '{work}/missing.keras'."),
    (["evaluate", "{empty_keras}", *M], "The model file '{empty_keras}' is empty (0 bytes)."),
    (["evaluate", "{random_keras}", *M], "Cannot read '{random_keras}' as a Keras model: it is not a .keras file"),
    (["evaluate", "{truncated_keras}", *M],
     "Cannot read '{truncated_keras}' as a Keras model: it is truncated or corrupted"),
    (["evaluate", "{corrupted_keras}", *M], "Cannot read '{corrupted_keras}' as a Keras model: it is corrupted"),
    (["evaluate", "{zip_keras}", *M], "a zip archive without config.json."),
    (["evaluate", "{folder_keras}", *M], "The model file '{folder_keras}' is a folder, not a file."),
    (["evaluate", "{random_json}", *M], "Cannot read '{random_json}' as a Keras model: it is not a .keras file"),
    # export: device, mapping, re-import
    (["export", "{model}", "{work}/chip", "--g-min", "-1e-6"], "g_min must be a finite conductance in siemens >= 0"),
    (["export", "{model}", "{work}/chip", "--g-min=-1e-6"], "g_min must be a finite conductance in siemens >= 0"),
    (["export", "{model}", "{work}/chip", "--g-min", "nan"], "g_min must be a finite conductance in siemens >= 0"),
    (["export", "{model}", "{work}/chip", "--g-max", "inf"], "g_max must be a finite conductance in siemens >= 0"),
    (["export", "{model}", "{work}/chip", "--g-max", "-40e-6"], "g_max must be a finite conductance in siemens >= 0"),
    (["export", "{model}", "{work}/chip", "--g-min", "5e-5"], "g_min must be below g_max"),
    (["export", "{model}", "{work}/chip", "--levels", "1"], "levels must be at least 2, got 1."),
    (["export", "{model}", "{work}/chip", "--levels", "-16"], "levels must be at least 2, got -16."),
    (["export", "{model}", "{work}/chip", "--levels", "many"], "--levels must be a level count"),
    (["export", "{model}", "{work}/chip", "--levels", "1e-6,nan"], "levels must all be finite numbers."),
    (["export", "{model}", "{work}/chip", "--levels", "-1e-6,1e-6"], "levels must"),
    (["export", "{model}", "{work}/chip", "--levels", ","], "levels must list at least 2 values, got 0."),
    (["export", "{model}", "{work}/chip", "--scheme", "single"], "scheme must be one of"),
    (["export", "{model}", "{work}/chip", "--tile", "-1x3"], "A tile needs at least 1 row and 1 column, got (-1, 3)."),
    (["export", "{model}", "{work}/chip", "--tile", "0x256"], "at least 1 row"),
    (["export", "{model}", "{work}/chip", "--tile", "256"], "tile must be a pair (rows, cols), got (256,)."),
    (["export", "{model}", "{work}/chip", "--tile", "axb"], "tile must look like ROWSxCOLS"),
    (["export", "{model}", "{work}/chip", "--format", "xml"], "Unknown table format 'xml'; choose from npz, csv."),
    (["export", "{model}", "{work}/chip", "--format", "csv"], "formats must include 'npz'"),
    (["export", "{model}", "{work}/chip", "--scale", "percentile:200"], "The scale percentile must be in (0, 100]"),
    (["export", "{model}", "{work}/chip", "--scale", "percentile:nan"], "The scale percentile must be in (0, 100]"),
    (["export", "{model}", "{work}/chip", "--scale", "mean"], "scale must be 'max' or ('percentile', q); got 'mean'."),
    (["export", "{model}", "{work}/chip", "--per", "row"], "per must be one of layer, column; got 'row'."),
    (["export", "{model}", "{work}/chip", "--bias", "up"], "bias must be one of digital, row; got 'up'."),
    (["export", "{model}", "{work}/chip", "--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1."),
    (["export", "{model}", "{work}/chip", "--time", "1y"], "--time only applies with --task."),
    (["export", "{model}", "{work}/chip", *M, "--programming-noise", "-0.1"],
     "--programming-noise must be a finite number >= 0, got -0.1."),
    (["export", "{model}", "{work}/chip", *M, "--programming-noise", "nan"],
     "--programming-noise must be a finite number >= 0, got nan."),
    (["export", "{model}", "{work}/chip", *M, "--programming-noise", "{random_json}"],
     "The --programming-noise file '{random_json}' is not text"),
    (["export", "{model}", "{work}/chip", *M, "--programming-noise", "{list_json}"],
     "The --programming-noise file '{list_json}' must hold a JSON object"),
    (["export", "{model}", "{work}/chip", *M, "--programming-noise", "pcm", "--time", "-1s"],
     "must be a finite number of seconds >= 0"),
    (["export", "{model}", "{work}/chip", "--simulate", "standard"], "--simulate only applies with --task."),
    (["export", "{model}", "{work}/chip", *M, "--simulate", "fancy"], "Unknown crossbar 'fancy'; known: ideal, standard."),
    (["export", "{model}", "{work}/chip", *M, "--simulate", "{{oops"], "The --simulate JSON is not valid JSON"),
    (["export", "{model}", "{work}/chip", *M, "--simulate", "{list_json}"],
     "The --simulate file '{list_json}' must hold a JSON object"),
    (["export", "{model}", "{work}/chip", *M, "--simulate", '{{"output_noise": -1}}'],
     "output_noise must be a finite number >= 0, got -1"),
    (["export", "{model}", "{work}/chip", *M, "--simulate", '{{"tile_rows": 0}}'], "tile_rows must be >= 1, got 0."),
    (["export", "{model}", "{work}/chip", *M, "--simulate", '{{"output_bound": -10}}'],
     "output_bound must be a finite number > 0, got -10"),
    (["export", "{model}", "{work}/chip", *M, "--simulate", "standard", "--tile", "256x256"],
     "The crossbar's tiles (512xany) are not the tables' tiles (256x256)"),
    (["export", "{model}", "{work}/chip", *M, "--simulate", '{{"tile_rows": 64, "tile_cols": 32}}', "--tile", "64x64"],
     "The crossbar's tiles (64x32) are not the tables' tiles (64x64)"),
    (["export", "{model}", "{work}/chip", *M, "--simulate", "standard", "--tile", "0x256"], "at least 1 row"),
    (["export", "{model}", "{work}/chip", *M, "--simulate", "ideal", "--bias", "row"],
     "tables with the bias on a crossbar row (bias='row') cannot be simulated"),
    (["export", "{model}", "{work}/chip", "--task", "imagenet"], "Unknown task 'imagenet'"),
    (["export", "{model}", "{work}/chip", *M, "--data-dir", "{afile}"],
     "--data-dir '{afile}' is a file, not a folder."),
    # export: paths and files
    (["export", "{model}", "{afile}"], "Output path '{afile}' exists and is not a folder."),
    (["export", "{model}", "{afile}/chip"], "The tables folder '{afile}/chip' cannot be created: '{afile}' is a file"),
    (["export", "{model}", "{folder_keras}"], "Output folder '{folder_keras}' exists; pass overwrite=True"),
    (["export", "{model}", "{work}/.chip.partial-1-00ff00ff"], "is named as an export's temporary folder"),
    (["export", "{work}/missing.keras", "{work}/chip"], "No model file at '{work}/missing.keras'."),
    (["export", "{empty_keras}", "{work}/chip"], "The model file '{empty_keras}' is empty (0 bytes)."),
    (["export", "{random_keras}", "{work}/chip"],
     "Cannot read '{random_keras}' as a Keras model: it is not a .keras file"),
    (["export", "{truncated_keras}", "{work}/chip"],
     "Cannot read '{truncated_keras}' as a Keras model: it is truncated or corrupted"),
    # zoo
    (["zoo", "build", "nothing"], "Nothing to build called 'nothing'"),
    (["zoo", "build", "mnist-5k", "--epochs", "0"], "--epochs must be >= 1, got 0."),
    (["zoo", "build", "mnist-5k", "--epochs", "-1"], "--epochs must be >= 1, got -1."),
    (["zoo", "build", "mnist-5k", "--clean-epochs", "-1"], "--clean-epochs must be >= 1, got -1."),
    (["zoo", "build", "mnist-5k", "--epochs", "2", "--clean-epochs", "3"], "at least one clean and one MAT epoch"),
    (["zoo", "build", "mnist-5k", "--draws", "-1"], "--draws must be >= 1, got -1."),
    (["zoo", "build", "mnist-5k", "--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1."),
    (["zoo", "build", "mnist-5k", "--out-dir", "{afile}"], "--out-dir '{afile}' is a file, not a folder."),
    (["zoo", "build", "mnist-5k", "--out-dir", "{work}/z", "--registry", "{folder_keras}"],
     "--registry '{folder_keras}' is a folder; give a file name."),
    (["zoo", "build", "mnist-5k", "--out-dir", "{work}/z", "--registry", "{random_json}"],
     "The --registry file '{random_json}' is not text (byte 0x"),
    (["zoo", "build", "mnist-5k", "--out-dir", "{work}/z", "--registry", "{list_json}"],
     "'{list_json}' is not a mat-keras weights registry"),
    (["zoo", "build", "mnist-5k", "--data-dir", "{afile}"], "--data-dir '{afile}' is a file, not a folder."),
    (["zoo", "list", "--registry", "{random_json}"], "The --registry file '{random_json}' is not text (byte 0x"),
    (["zoo", "list", "--registry", "{empty_json}"], "The --registry file '{empty_json}' is empty (0 bytes)."),
    (["zoo", "download", "x", "--registry", "{random_json}"], "The --registry file '{random_json}' is not text"),
    (["zoo", "list", "--registry", "{work}/none.json"], "No weights registry at '{work}/none.json'."),
    (["zoo", "download", "nothing"], "Unknown weights 'nothing'"),
    (["zoo", "download", "x", "--registry", "{list_json}"], "'{list_json}' is not a mat-keras weights registry"),
    # the dispatcher
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    (["-task", "mnist-5k", "-epochs"], "argument --epochs/-epochs: expected one argument"),
]


def _random_bytes(count, seed=0):
    generator = random.Random(seed)
    return bytes(generator.randrange(256) for _ in range(count))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The files the table names: a good model and every kind of broken input."""
    folder = tmp_path_factory.mktemp("inputs")
    model = folder / "model.keras"
    keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(model)
    good = model.read_bytes()
    corrupted = bytearray(good)
    with zipfile.ZipFile(model) as archive:
        entry = archive.getinfo("config.json")
    # Flips one byte of config.json's stored data: the archive reads, its CRC fails.
    start = entry.header_offset + 30 + len(entry.filename.encode()) + len(entry.extra)
    corrupted[start + 1] ^= 0xFF
    contents = {
        "empty.keras": b"",
        "random.keras": _random_bytes(4000),
        "truncated.keras": good[: len(good) // 2],
        "corrupted.keras": bytes(corrupted),
        "random.json": _random_bytes(500, seed=1),
        "list.json": b"[1, 2]",
        "number.json": b"0.1",
        "broken.json": b"{oops",
        "empty.json": b"",
        "negative.json": b'{"programming": -1}',
        "unknown.json": b'{"colour": 1}',
        "empty.csv": b"",
        "random.csv": _random_bytes(500, seed=2),
        "header.csv": b"level,target_uS,conductance_uS\n",
        "columns.csv": b"a,b\n1,2\n",
        "text.csv": b"level,target_uS,conductance_uS\n0,x,1\n",
        "afile": b"a regular file\n",
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    zipped = folder / "zip.keras"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    (folder / "folder.keras").mkdir()
    paths = {name.replace(".", "_"): str(folder / name) for name in [*contents, "zip.keras", "folder.keras"]}
    paths["model"] = str(model)
    return paths


def _fill(text, files, work):
    return text.format(work=work, **files)


def _run_main(argv):
    try:
        return cli.main(argv)
    except SystemExit as exit:  # argparse's own errors
        return exit.code


class WorkStarted(AssertionError):
    pass


@pytest.fixture
def no_work(monkeypatch):
    """Makes loading a dataset or training a model fail the test: the checks must come first."""

    def refuse(*args, **kwargs):
        raise WorkStarted("data loaded or training started before the options were checked")

    monkeypatch.setattr(keras.Model, "fit", refuse)
    monkeypatch.setattr(runs, "load_dataset", refuse)
    monkeypatch.setattr(export_cli.zoo, "load_dataset", refuse)


def _listing(*folders):
    return {folder: sorted(os.listdir(folder)) for folder in folders}


@pytest.mark.parametrize("argv, message", BAD_COMMAND_LINES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_command_line_is_one_sentence_before_any_work(argv, message, files, tmp_path, capsys, no_work,
                                                          monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # default output folders (runs/TASK) land here, and must not
    inputs = os.path.dirname(files["model"])
    before = _listing(work, inputs)
    status = _run_main([_fill(token, files, work) for token in argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, (status, captured.err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("mat-keras"), lines
    assert " error: " in lines[0] and _fill(message, files, work) in lines[0], lines[0]
    assert "Traceback" not in captured.err and "Epoch" not in captured.out
    assert _listing(work, inputs) == before  # nothing written, nothing left


# One command line of each class, run by the real console script: what a user sees on a terminal.
_CONSOLE_LINES = {
    "validate before working": (["train", *M, "--lr", "nan"], "--lr must be a finite learning rate > 0, got nan."),
    "files read": (["evaluate", "{model}", *M, "--device", "{random_json}"], "is not text (byte 0x"),
    "negative numbers": (["export", "{model}", "{work}/chip", "--g-min", "-1e-6"], "g_min must be a finite"),
    "paths before training": (["train", *M, "--save", "{afile}/m.keras"], "'{afile}' is a file, not a folder."),
}


def console_command(*argv):
    """The real `mat-keras` command, as a subprocess argument list (this checkout's code)."""
    return [sys.executable, "-m", "mat_keras.cli", *argv]


def console_env(**extra):
    """The environment of a console-script run: this checkout first, TensorFlow's log left to the command."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(PYTHONUNBUFFERED="1", MPLBACKEND="Agg", **extra)
    return env


def test_console_script_gives_one_sentence_for_each_class(files, tmp_path):
    # All at once: each start imports TensorFlow, which is most of the time.
    work = tmp_path / "work"
    work.mkdir()
    running = {
        name: subprocess.Popen(console_command(*[_fill(t, files, work) for t in argv]), cwd=work,
                               env=console_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (argv, _) in _CONSOLE_LINES.items()
    }
    for name, process in running.items():
        out, err = process.communicate(timeout=240)
        lines = err.strip().splitlines()
        assert process.returncode == 2, (name, err)
        # One line: TensorFlow's start-up log is silenced too.
        assert len(lines) == 1 and _fill(_CONSOLE_LINES[name][1], files, work) in lines[0], (name, lines)
        assert "Traceback" not in err and "Epoch" not in out, name
    assert os.listdir(work) == []
