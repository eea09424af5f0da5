"""`daneel init NAME --type T`: scaffold a component project that serves and passes its own test unchanged.

The files come from the templates in `daneel/cli/templates`, with `__NAME__` (the project's name),
`__CLASS__` (its class, in CamelCase), `__NODE__` (its name as Kubernetes names things), `__TYPE__`,
`__IMAGE__` and the other placeholders filled in. `--language nodejs|java` writes a JavaScript or Java
class instead, tested with node's own test runner or with plain javac and java.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import click

from daneel.runtime.component import Kind
from daneel.spec.languages import LANGUAGES, Language
from daneel.version import runtime_image

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: Implementation names in capitals only are read as prepackaged servers or built-ins (SKLEARN_SERVER).
_SERVER_LIKE = re.compile(r"[A-Z][A-Z0-9_]*")
_FAN_OUT = (Kind.ROUTER, Kind.COMBINER)
#: The types each language scaffolds: a router or combiner needs children, which stand-ins in Python give.
LANGUAGE_KINDS: dict[Language, tuple[Kind, ...]] = {
    "python": tuple(Kind),
    "nodejs": (Kind.MODEL, Kind.TRANSFORMER, Kind.OUTPUT_TRANSFORMER),
    "java": (Kind.MODEL,),
}
#: What tests the project, after `cd NAME`.
_TEST_COMMAND: dict[Language, str] = {"python": "python -m pytest", "nodejs": "npm test", "java": "sh test.sh"}


@click.command()
@click.argument("name")
@click.option(
    "--type",
    "kind",
    type=click.Choice([kind.value for kind in Kind]),
    default=Kind.MODEL.value,
    show_default=True,
    help="What the component does in a graph; its class gets the method this type needs.",
)
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Create NAME/ in this folder (default: the current one).",
)
@click.option("--image", help="The image repository CI pushes to and deploys (default: registry.example.com/NAME).")
@click.option(
    "--language",
    type=click.Choice(LANGUAGES),
    default="python",
    show_default=True,
    help="The component's language: a Python class, a Node.js class (MODEL, TRANSFORMER, OUTPUT_TRANSFORMER) "
    "or a Java class (MODEL).",
)
def init(name: str, kind: str, parent: Path, image: str | None, language: Language) -> None:
    """Start component project NAME/, which serves, tests and deploys itself.

    It holds the class, daneel.yaml, its test, deploy.yaml, and CI files for GitHub Actions and GitLab;
    a Python project adds requirements.txt, a Node.js one package.json, a Java one test.sh. A folder that
    holds anything is left alone.
    """
    class_name = _class_name(name)
    if Kind(kind) not in LANGUAGE_KINDS[language]:
        kinds = ", ".join(k.value for k in LANGUAGE_KINDS[language])
        raise click.BadParameter(f"a {language} component is one of {kinds}; got {kind}", param_hint="--type")
    target = parent / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise click.ClickException(f"{target} already exists and is not empty; choose another NAME or --dir")
    files = scaffold(name, Kind(kind), image or f"registry.example.com/{node_name(name)}", language)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if path.suffix == ".sh":
            path.chmod(0o755)
    click.echo(f"created {target}/ ({kind} {class_name}): {', '.join(sorted(files))}")
    click.echo(f"next: cd {target} && {_TEST_COMMAND[language]} && daneel serve .")


def scaffold(name: str, kind: Kind, image: str, language: Language = "python") -> dict[str, str]:
    """The project's files (relative path → text) for component `name` of type `kind` in `language`."""
    class_name = _class_name(name)
    values = {
        "__NAME__": name,
        "__CLASS__": class_name,
        "__NODE__": node_name(name),
        "__TYPE__": kind.value,
        "__IMAGE__": image,
        "__REGISTRY__": registry(image),
        "__DANEEL_IMAGE__": runtime_image(language),
        "__TESTS__": _template(f"tests_{kind.value}.tmpl") if language == "python" else "",
        "__CHILDREN__": _template("children.yaml.tmpl") if kind in _FAN_OUT else "",
        "__GITHUB_TEST__": _template(f"github_test.{language}.tmpl"),
        "__GITLAB_TEST__": _template(f"gitlab_test.{language}.tmpl"),
    }
    files = _files(name, class_name, kind, language) | {
        "deploy.yaml": "deploy.yaml.tmpl",
        ".github/workflows/daneel.yml": "github.yml.tmpl",
        ".gitlab-ci.yml": "gitlab-ci.yml.tmpl",
    }
    return {path: _fill(_template(template), values) for path, template in files.items()}


def _files(name: str, class_name: str, kind: Kind, language: Language) -> dict[str, str]:
    """The language's own files: relative path → template."""
    if language == "nodejs":
        return {
            f"{class_name}.js": f"nodejs_{kind.value}.js.tmpl",
            f"test/{class_name}.test.js": f"nodejs_test_{kind.value}.js.tmpl",
            "package.json": "package.json.tmpl",
            "daneel.yaml": "daneel.nodejs.yaml.tmpl",
            "README.md": "README.nodejs.md.tmpl",
            ".gitignore": "gitignore.nodejs.tmpl",
        }
    if language == "java":
        return {
            f"src/main/java/{class_name}.java": f"java_{kind.value}.java.tmpl",
            f"src/test/java/{class_name}Test.java": f"java_test_{kind.value}.java.tmpl",
            "test.sh": "java_test.sh.tmpl",
            "daneel.yaml": "daneel.java.yaml.tmpl",
            "README.md": "README.java.md.tmpl",
            ".gitignore": "gitignore.java.tmpl",
        }
    files = {
        f"{class_name}.py": f"{kind.value}.py.tmpl",
        "requirements.txt": "requirements.txt.tmpl",
        "daneel.yaml": "daneel.yaml.tmpl",
        f"tests/test_{name}.py": "test_component.py.tmpl",
        "README.md": "README.md.tmpl",
        ".gitignore": "gitignore.tmpl",
    }
    if kind in _FAN_OUT:
        files["children.py"] = "children.py.tmpl"
    return files


def node_name(name: str) -> str:
    """`name` as Kubernetes names objects and containers: lower case, dashes for underscores."""
    return name.lower().replace("_", "-")


def registry(image: str) -> str:
    """The registry host of an image repository, as `docker login` takes it: Docker Hub when it names none."""
    first, slash, _ = image.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _class_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise click.BadParameter(
            "expected a letter, then letters, digits or underscores (it names the class and its module)",
            param_hint="NAME",
        )
    class_name = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    if _SERVER_LIKE.fullmatch(class_name):
        raise click.BadParameter(
            f"its class would be {class_name}, which reads as a prepackaged server's name; use lower case letters",
            param_hint="NAME",
        )
    return class_name


def _template(name: str) -> str:
    return resources.files("daneel.cli").joinpath("templates", name).read_text()


def _fill(text: str, values: dict[str, str]) -> str:
    # templates that hold placeholders themselves go first
    for placeholder in ("__TESTS__", "__CHILDREN__", "__GITHUB_TEST__", "__GITLAB_TEST__"):
        text = text.replace(placeholder, values[placeholder])
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text
