from pathlib import Path

import pytest

from daneel.errors import LoadError
from daneel.runtime import folder, prepackaged
from daneel.runtime.component import Kind

MODEL = "class MyModel:\n    def predict(self, X, names):\n        return X\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_daneel_yaml_makes_the_folder_explicit(tmp_path: Path) -> None:
    text = "name: iris\nimplementation: MyModel\ntype: TRANSFORMER\nparameters: {a: 1}\nrequirements: req.txt\n"
    config = folder.read_config(write(tmp_path, {"daneel.yaml": text}))
    assert (config.name, config.implementation, config.type) == ("iris", "MyModel", Kind.TRANSFORMER)
    assert (config.parameters, config.requirements) == ({"a": 1}, "req.txt")


def test_daneel_yaml_rejects_unknown_fields_by_name(tmp_path: Path) -> None:
    write(tmp_path, {"daneel.yaml": "name: iris\nimplementaton: MyModel\n"})
    with pytest.raises(LoadError, match="implementaton: Extra inputs are not permitted"):
        folder.read_config(tmp_path)


def test_daneel_yaml_rejects_a_bad_type_by_name(tmp_path: Path) -> None:
    write(tmp_path, {"daneel.yaml": "type: PREDICTOR\n"})
    with pytest.raises(LoadError, match="type: "):
        folder.read_config(tmp_path)


def test_daneel_yaml_must_be_yaml(tmp_path: Path) -> None:
    write(tmp_path, {"daneel.yaml": "name: [iris\n"})
    with pytest.raises(LoadError, match="not valid YAML"):
        folder.read_config(tmp_path)


def test_an_empty_daneel_yaml_changes_nothing(tmp_path: Path) -> None:
    assert folder.read_config(write(tmp_path, {"daneel.yaml": ""})) == folder.FolderConfig()


def test_seldon_s2i_environment_is_read(tmp_path: Path) -> None:
    environment = (
        "# Seldon\n"
        "MODEL_NAME=MyModel\n"
        "SERVICE_TYPE=ROUTER\n"
        "PERSISTENCE=0\n"
        """PARAMETERS='[{"name": "n", "value": "3", "type": "INT"}]'\n"""
    )
    config = folder.read_config(write(tmp_path, {".s2i/environment": environment}))
    assert (config.implementation, config.type) == ("MyModel", Kind.ROUTER)
    assert config.parameters == [{"name": "n", "value": "3", "type": "INT"}]


def test_daneel_yaml_wins_over_s2i(tmp_path: Path) -> None:
    write(tmp_path, {"daneel.yaml": "implementation: Theirs\n", ".s2i/environment": "MODEL_NAME=Mine\n"})
    assert folder.read_config(tmp_path).implementation == "Theirs"


def test_s2i_service_type_must_be_known(tmp_path: Path) -> None:
    write(tmp_path, {".s2i/environment": "MODEL_NAME=MyModel\nSERVICE_TYPE=PREDICTOR\n"})
    with pytest.raises(LoadError, match="SERVICE_TYPE 'PREDICTOR' is not one of MODEL"):
        folder.read_config(tmp_path)


@pytest.mark.parametrize("file", ["model.joblib", "model.pkl"])
def test_a_saved_sklearn_model_is_recognised(tmp_path: Path, file: str) -> None:
    assert prepackaged.recognise(write(tmp_path, {file: ""})) == "SKLEARN_SERVER"
    assert prepackaged.recognise(tmp_path / "..") is None


def test_a_class_named_after_its_file_is_found(tmp_path: Path) -> None:
    write(tmp_path, {"MyModel.py": MODEL, "helpers.py": "class Helper:\n    def predict(self, X):\n        pass\n"})
    assert folder.find_class(tmp_path) == "MyModel"


def test_the_one_component_class_is_found_in_any_file(tmp_path: Path) -> None:
    write(tmp_path, {"serve.py": "import os\n\nclass Config:\n    pass\n\n" + MODEL.replace("predict", "route")})
    assert folder.find_class(tmp_path) == "serve.MyModel"


def test_async_methods_make_a_component_class(tmp_path: Path) -> None:
    write(tmp_path, {"app.py": "class Scorer:\n    async def predict(self, X):\n        return X\n"})
    assert folder.find_class(tmp_path) == "app.Scorer"


def test_several_classes_are_ambiguous(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": MODEL, "b.py": MODEL.replace("MyModel", "Other")})
    with pytest.raises(LoadError, match=r"several classes \(a\.MyModel, b\.Other\); name one as implementation"):
        folder.find_class(tmp_path)


def test_an_empty_folder_says_what_was_expected(tmp_path: Path) -> None:
    write(tmp_path, {"notes.py": "class Notes:\n    def read(self):\n        pass\n"})
    with pytest.raises(LoadError) as caught:
        folder.find_class(tmp_path)
    message = caught.value.message
    assert message.startswith(f"{tmp_path}: no model found")
    for expected in ("model.joblib", "model.pkl", "a .py file with a class", "predict", "daneel.yaml"):
        assert expected in message


def test_a_syntax_error_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"broken.py": "class Broken(:\n"})
    with pytest.raises(LoadError, match=r"broken\.py"):
        folder.find_class(tmp_path)


@pytest.mark.parametrize(
    ("environment", "words"),
    [
        ("PARAMETERS=[{name:n}]\n", "PARAMETERS is not JSON"),
        ("PARAMETERS='[1]'\n", "parameters"),
        ('MODEL_NAME=MyModel\nPARAMETERS=\'[{"name": "n"}]\n', "line 2: PARAMETERS: No closing quotation"),
    ],
)
def test_s2i_parameters_must_be_a_json_list_or_object(tmp_path: Path, environment: str, words: str) -> None:
    write(tmp_path, {".s2i/environment": environment})
    with pytest.raises(LoadError, match=words):
        folder.read_config(tmp_path)
