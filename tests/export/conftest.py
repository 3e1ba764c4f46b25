"""Fixtures of the export tests; the model builders live in `export_cases`."""

import pytest

import export_cases


@pytest.fixture
def mlp():
    """A small MLP with biases: 20-16-3."""
    return export_cases.mlp()
