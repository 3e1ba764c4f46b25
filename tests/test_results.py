"""Sweep results: each kind keeps its levels under its own name and reloads as itself."""

import json

import numpy as np

import mat_keras as mat
from mat_keras import results


def _deployment():
    accuracy = np.array([[0.9, 0.8], [0.7, 0.6]])
    return mat.DeploymentResult(
        times=[1.0, 3600.0], accuracy=accuracy, loss=np.full((2, 2), np.nan), name="chip", compensated=True
    )


def test_deployment_result_keeps_times_and_reloads_as_itself(tmp_path):
    deployed = _deployment()
    swept = mat.SweepResult(sds=[0.0, 0.1], accuracy=deployed.accuracy, loss=deployed.loss, name="sweep")
    assert deployed.levels == [1.0, 3600.0] and not hasattr(deployed, "sds")
    results.save_json(tmp_path / "r.json", [swept, deployed])
    payload = json.loads((tmp_path / "r.json").read_text())
    assert "kind" not in payload[0] and payload[0]["sds"] == [0.0, 0.1]  # sweep files as before
    assert payload[1]["kind"] == "deployment" and "sds" not in payload[1]
    assert payload[1]["summary"][1]["time_s"] == 3600.0
    again_swept, again = mat.sweep.load_json(tmp_path / "r.json")
    assert type(again_swept) is mat.SweepResult and type(again) is mat.DeploymentResult
    assert again.times == [1.0, 3600.0] and again.compensated
    np.testing.assert_array_equal(again.accuracy, deployed.accuracy)
    assert again.table().splitlines()[2].startswith("1 h")


def test_deployment_csv_names_its_level_column(tmp_path):
    _deployment().to_csv(tmp_path / "d.csv")
    rows = (tmp_path / "d.csv").read_text().splitlines()
    assert rows[0] == "name,time_s,draw,accuracy,loss" and rows[3].startswith("chip,3600.0,0,")
