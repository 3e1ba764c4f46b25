"""The result notebooks: committed clean, and they run end to end in fast mode.

Each notebook is executed with nbclient (kernel `python3`, the ipykernel of
this environment) in a temporary folder, with `MAT_KERAS_FAST=1`: offline
data (mnist-5k, mocked tensorflow-datasets CIFAR, synthetic wfdb records),
few epochs and draws. A cell error fails the test; so does a missing figure.
"""

import pathlib
import shutil
import struct

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
# The helper module the notebooks import in fast mode, copied next to them.
HELPERS = ["offline_data.py"]
# Notebook -> the figures its fast run must write into figures/.
NOTEBOOKS = {
    "MNIST_MLP.ipynb": ["mnist_mlp_sweeps.png", "mnist_mlp_export.png"],
    "CNN_CIFAR.ipynb": ["cifar_mobilenetv2_sweeps.png"],
    "Test_ECG.ipynb": ["ecg_sweeps.png", "ecg_spikes.png"],
}
FAST_SWITCH = 'FAST = os.environ.get("MAT_KERAS_FAST") == "1"'


def read(name):
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def png_size(path):
    """Returns (width, height) of a PNG file, checking its signature."""
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    return struct.unpack(">II", header[16:24])


def test_every_notebook_is_covered():
    assert {path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")} == set(NOTEBOOKS)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_committed_clean(name):
    notebook = read(name)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: code cell {index} has outputs; clear them before committing"
            assert cell.execution_count is None, f"{name}: code cell {index} has an execution count"
        assert "attachments" not in cell or not cell.attachments, f"{name}: cell {index} has attachments"
    assert "widgets" not in notebook.metadata
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_starts_with_one_parameters_cell(name):
    code_cells = [cell for cell in read(name).cells if cell.cell_type == "code"]
    first = code_cells[0]
    # Tagged for papermill too; the full run is the default, fast mode is opt-in.
    assert first.metadata.get("tags") == ["parameters"]
    assert FAST_SWITCH in first.source
    for cell in code_cells[1:]:
        assert "parameters" not in cell.metadata.get("tags", [])
        assert "MAT_KERAS_FAST" not in cell.source


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_in_fast_mode(name, tmp_path, monkeypatch):
    for helper in HELPERS:
        shutil.copy(NOTEBOOKS_DIR / helper, tmp_path / helper)
    notebook = read(name)
    # The kernel inherits this environment: fast mode, quiet TensorFlow, and
    # matplotlib's notebook backend rather than the tests' Agg.
    monkeypatch.setenv("MAT_KERAS_FAST", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    for figure in NOTEBOOKS[name]:
        path = tmp_path / "figures" / figure
        assert path.is_file(), f"{name} did not write figures/{figure}"
        width, height = png_size(path)
        assert width >= 400 and height >= 300
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )
    assert "notebook ran in" in printed
