import importlib
import importlib.metadata
import pkgutil

import pytest

import daneel

MODULES = sorted(info.name for info in pkgutil.walk_packages(daneel.__path__, "daneel."))


def test_all_is_sorted() -> None:
    assert daneel.__all__ == sorted(daneel.__all__)


def test_every_public_name_is_importable() -> None:
    for name in daneel.__all__:
        assert getattr(daneel, name) is not None


def test_version_is_the_installed_distribution_version() -> None:
    assert daneel.__version__ == importlib.metadata.version("daneel")


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports_and_exports_what_it_lists(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", [])
    assert list(exported) == sorted(exported)
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ lists {item} but the module has no such name"
