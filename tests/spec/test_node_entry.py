"""Which file of a Node.js folder is loaded, and which folders are Node.js or Java at all."""

from __future__ import annotations

from pathlib import Path

from daneel.spec.languages import language_of, node_entry


def make(folder: Path, *files: str) -> Path:
    for name in files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"main": "lib/model.js"}' if name == "package.json" else "")
    return folder


def test_package_json_main_wins(tmp_path: Path) -> None:
    folder = make(tmp_path, "package.json", "lib/model.js", "MyModel.js")
    assert node_entry(folder) == folder / "lib/model.js"


def test_a_missing_main_gives_way_to_the_s2i_model_name(tmp_path: Path) -> None:
    folder = make(tmp_path, "package.json", "Shout.js")
    (folder / ".s2i").mkdir()
    (folder / ".s2i/environment").write_text("MODEL_NAME=Shout\n")
    assert node_entry(folder) == folder / "Shout.js"


def test_a_missing_main_with_nothing_else_is_still_named(tmp_path: Path) -> None:
    folder = make(tmp_path, "package.json")
    assert node_entry(folder) == folder / "lib/model.js"
    assert language_of(folder) == "nodejs"


def test_java_and_python_folders(tmp_path: Path) -> None:
    assert language_of(make(tmp_path / "a", "src/main/java/demo/Model.java")) == "java"
    assert language_of(make(tmp_path / "b", "model.jar")) == "java"
    assert language_of(make(tmp_path / "c", "model.py")) == "python"
