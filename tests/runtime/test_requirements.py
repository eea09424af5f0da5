import importlib.metadata
from pathlib import Path

import numpy as np
import pytest

from daneel.errors import LoadError
from daneel.runtime import requirements

NUMPY = np.__version__


def test_requirements_txt_comes_first(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("numpy\npandas>=2\n")
    (tmp_path / "conda.yaml").write_text("dependencies:\n- pip:\n  - other\n")
    assert requirements.read(tmp_path) == ["numpy", "pandas>=2"]


def test_conda_yaml_gives_its_pip_list(tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text("dependencies:\n- python=3.11\n- pip<=24\n- pip:\n  - numpy==2.0\n")
    assert requirements.read(tmp_path) == ["numpy==2.0"]


@pytest.mark.parametrize("text", ["", "name: env\n", "dependencies:\n- python=3.11\n"])
def test_no_pip_list_is_no_requirements(tmp_path: Path, text: str) -> None:
    (tmp_path / "conda.yaml").write_text(text)
    assert requirements.read(tmp_path) == []
    assert requirements.read(tmp_path / "elsewhere") == []


def test_a_conda_yaml_that_is_not_yaml_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text("dependencies: [pip\n")
    with pytest.raises(LoadError, match=r"conda\.yaml: not valid YAML"):
        requirements.read(tmp_path)


def test_met_requirements_are_not_reported() -> None:
    lines = [f"numpy=={NUMPY}", "NumPy>=1.0", "numpy", "pyyaml  # a comment", "", "# comment only"]
    assert requirements.unmet(lines) == []


def test_unmet_requirements_say_what_is_installed() -> None:
    lines = ["numpy<1", "daneel-no-such-package>=2", f"numpy!={NUMPY}"]
    assert requirements.unmet(lines) == [
        f"numpy<1 (installed {NUMPY})",
        "daneel-no-such-package>=2 (not installed)",
        f"numpy!={NUMPY} (installed {NUMPY})",
    ]


def test_markers_that_do_not_apply_skip_the_requirement() -> None:
    assert requirements.unmet(["daneel-no-such-package ; python_version < '3'"]) == []
    assert requirements.unmet(["daneel-no-such-package ; python_version >= '3'"]) != []


@pytest.mark.parametrize("line", ["-r other.txt", "--index-url https://example.org", "./wheels/pkg.whl", "-e ."])
def test_options_and_paths_are_skipped(line: str) -> None:
    assert requirements.unmet([line]) == []


def test_mlflow_skinny_meets_an_mlflow_pin() -> None:
    skinny = importlib.metadata.version("mlflow-skinny")
    assert requirements.unmet([f"mlflow=={skinny}"]) == []
    assert requirements.unmet(["mlflow<1"]) == [f"mlflow<1 (installed {skinny})"]
