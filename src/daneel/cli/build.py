"""`daneel build DIR -t IMAGE`: source to image, as Seldon's s2i did, on daneel's runtime image.

The build context is written to DIR/.daneel-build: a Dockerfile, the requirements file, and the
folder's files under app/. The same folder always gives the same context, byte for byte: files in
sorted order, modes reduced to 0644 and 0755, modification times set to SOURCE_DATE_EPOCH (the start
of 1980 when it is unset), and no dates in the Dockerfile. Requirements are installed in a layer of
their own before the code is copied, so a change of code alone rebuilds only the last layers.

A Node.js or Java component (or a folder of folders holding one) is built on daneel's runtime image
for its language instead: the Node.js one installs package.json's dependencies (`npm ci` with a lock
file, `npm install` without) in a layer before the code; the Java one compiles the sources into a
jar, against the io.daneel.Component that daneel's package ships.

The image is built with the first container engine that works (docker, podman, buildah); a docker
command whose daemon does not answer is not a working engine. With `--print` the context is written
and the command that builds it is printed instead; without it, no working engine is an error that
says why each could not, before anything is written.
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from daneel.errors import DaneelError
from daneel.runtime import folder, loader
from daneel.spec.languages import Language, language_of, node_entry, s2i_model_name
from daneel.version import __version__, runtime_image

CONTEXT = ".daneel-build"
ENGINES = ("docker", "podman", "buildah")
#: Never part of an image: version control and CI files, caches, virtual environments, earlier build contexts.
SKIPPED = frozenset(
    {".git", ".hg", ".svn", ".gitignore", ".github", ".gitlab-ci.yml", CONTEXT, ".venv", "venv", ".tox"}
    | {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".ipynb_checkpoints", ".DS_Store"}
    | {"node_modules"}  # installed in the image from package.json
)
_NPM_LOCKS = ("package-lock.json", "npm-shrinkwrap.json")
#: Where daneel's Java sources (io/daneel/Component.java) lie in the image, asked of its Python.
_DANEEL_JAVA = """$(python -c 'from daneel.runtime.languages.java import SOURCES; print(SOURCES)')"""
#: Java sources compiled into the image: not tests, nor what Maven wrote.
_JAVA_SOURCES = "$(find . -name '*.java' -not -path './src/test/*' -not -path './target/*' | sort)"
_EPOCH_1980 = 315532800
_PROBE_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class Project:
    """What the image serves: the folder, the model's name (None for a folder of model folders), the
    requirements file, and labels describing it."""

    root: Path
    name: str | None
    requirements: Path | None
    labels: dict[str, str]
    language: Language = "python"
    #: Folders (relative, "." for the root) of the Node.js and Java components built in the image.
    components: tuple[tuple[str, Language], ...] = ()


@click.command()
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-t", "--tag", "image", required=True, help="Name of the image to build, e.g. registry/iris:1.0.")
@click.option(
    "--print", "print_only", is_flag=True, help="Write the build context and print the command; build nothing."
)
@click.option("--engine", type=click.Choice(ENGINES), help="The container engine (default: the first that works).")
def build(directory: Path, image: str, print_only: bool, engine: str | None) -> None:
    """Build a container image that serves model folder DIR, or print how.

    The image (-t IMAGE) is daneel's runtime image with the folder's requirements and the folder.

    DIR is what `daneel serve DIR` serves: a Python, Node.js or Java component (with daneel.yaml
    or Seldon's .s2i/environment), a model file, or a folder of model folders. Its requirements file
    (daneel.yaml `requirements`, else requirements.txt) is installed into the image; a Node.js
    component's package.json dependencies too, and a Java component's sources are compiled.
    """
    try:
        project = read_project(directory)
        epoch = _epoch(os.environ)
    except DaneelError as exc:
        raise click.ClickException(exc.message) from None
    chosen = None if print_only else _working_engine(engine)
    written = write_context(project, epoch)
    files = sum(1 for path in written.rglob("*") if path.is_file())
    context = directory / CONTEXT  # as the user named the folder, for the command printed
    click.echo(f"wrote the build context of {directory} to {context} ({files} files)", err=True)
    if chosen is None:
        click.echo(shlex.join(build_command(_installed_engine(engine), image, context)))
        return
    _run(chosen, build_command(chosen, image, context))


def read_project(directory: Path) -> Project:
    """The project in `directory`, read as `daneel serve` reads it; a LoadError when it holds no model."""
    root = directory.resolve()
    language = language_of(root)
    if language != "python":
        return _component_project(root, language)
    components = _other_languages(root)
    if components:
        return _mixed_project(root, components)
    specs = loader.resolve_all(str(root))
    single = len(specs) == 1 and loader.is_model_folder(root)
    config = folder.read_config(root)
    requirements = root / (config.requirements or "requirements.txt")
    if config.requirements and not requirements.is_file():
        raise DaneelError(f"{root / folder.CONFIG_FILE}: requirements: no file {requirements}")
    labels = _base_labels("python")
    if single:
        spec = specs[0]
        labels |= {"org.opencontainers.image.title": spec.name, "dev.daneel.implementation": spec.implementation}
        labels |= {"dev.daneel.type": spec.kind.value} if spec.kind is not None else {}
    name = specs[0].name if single else None
    return Project(root, name, requirements if requirements.is_file() else None, labels)


def _component_project(root: Path, language: Language) -> Project:
    """A Node.js or Java component: named by daneel.yaml or its folder, typed by daneel.yaml or .s2i/environment."""
    config = folder.read_config(root)
    name = config.name or root.name
    implementation = config.implementation or s2i_model_name(root)
    entry = node_entry(root) if language == "nodejs" else None
    implementation = implementation or (entry.name if entry is not None else None)
    labels = _base_labels(language) | {"org.opencontainers.image.title": name}
    labels |= {"dev.daneel.implementation": implementation} if implementation else {}
    labels |= {"dev.daneel.type": config.type.value} if config.type is not None else {}
    return Project(root, name, None, labels, language, ((".", language),))


def _other_languages(root: Path) -> tuple[tuple[str, Language], ...]:
    """The Node.js and Java components among the subfolders of a folder of folders."""
    if loader.is_model_folder(root):
        return ()
    found = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIPPED):
        language = language_of(sub)
        if language != "python" and not sub.name.startswith((".", "_")):
            found.append((sub.name, language))
    return tuple(found)


def _mixed_project(root: Path, components: tuple[tuple[str, Language], ...]) -> Project:
    """A folder of folders holding Node.js or Java components, and perhaps Python ones: one language besides Python."""
    languages = sorted({language for _, language in components})
    if len(languages) > 1:
        held = ", ".join(f"{name} ({language})" for name, language in components)
        expected = "expected components in one language besides Python (an image has one runtime)"
        raise DaneelError(f"{root}: {expected}; got {held}")
    others = {name for name, _ in components}
    for sub in loader.model_subfolders(root):
        if sub.name not in others:
            loader.resolve_all(str(sub))  # a Python folder that cannot serve fails here, as it would in the image
    requirements = root / "requirements.txt"
    reqs = requirements if requirements.is_file() else None
    return Project(root, None, reqs, _base_labels(languages[0]), languages[0], components)


def _base_labels(language: Language) -> dict[str, str]:
    labels = {"org.opencontainers.image.base.name": runtime_image(language), "dev.daneel.version": __version__}
    return labels | ({"dev.daneel.language": language} if language != "python" else {})


def dockerfile(project: Project) -> str:
    """The Dockerfile: requirements in a cached layer of their own, then the code; no dates, so it is reproducible."""
    labels = " \\\n      ".join(f"{key}={json.dumps(value)}" for key, value in sorted(project.labels.items()))
    command = ["serve", "/app", *(["--name", project.name] if project.name else [])]
    lines = [
        "# Written by `daneel build`; the same folder always gives the same file.",
        f"FROM {runtime_image(project.language)}",
        f"LABEL {labels}",
    ]
    npm = [line for path, language in project.components if language == "nodejs" for line in _npm(project.root, path)]
    javac = [line for path, language in project.components if language == "java" for line in _javac(project, path)]
    if project.requirements is not None or npm or javac:
        lines.append("USER root")
    if project.requirements is not None:
        lines += [
            "COPY requirements.txt /tmp/daneel-build/requirements.txt",
            "RUN pip install --no-cache-dir --root-user-action=ignore -r /tmp/daneel-build/requirements.txt"
            " && rm -rf /tmp/daneel-build",
        ]
    lines += [*npm, "COPY app/ /app/", *javac]
    lines += [
        "WORKDIR /app",
        "USER 1000:1000",
        "EXPOSE 8080 8081",
        'ENTRYPOINT ["daneel"]',
        f"CMD {json.dumps(command)}",
    ]
    return "\n".join(lines) + "\n"


def _npm(root: Path, path: str) -> list[str]:
    """Install a Node.js component's dependencies, before its code is copied: `npm ci` holds to the lock file."""
    package = root / path / "package.json"
    locks = [name for name in _NPM_LOCKS if (root / path / name).is_file()]
    if not package.is_file() or not (locks or _has_dependencies(package)):
        return []
    target = posixpath.normpath(posixpath.join("/app", path))
    sources = " ".join(posixpath.normpath(posixpath.join("app", path, name)) for name in ["package.json", *locks])
    install = "npm ci" if locks else "npm install"
    return [
        f"COPY {sources} {target}/",
        f"RUN cd {target} && {install} --omit=dev --no-audit --no-fund && npm cache clean --force",
    ]


def _has_dependencies(package: Path) -> bool:
    try:
        data = json.loads(package.read_text())
    except (OSError, ValueError):
        return True  # npm says what is wrong with it, in the build's log
    return isinstance(data, dict) and bool(data.get("dependencies"))


def _javac(project: Project, path: str) -> list[str]:
    """Compile a Java component's sources into a jar beside them; a folder holding only jars needs nothing."""
    source = project.root / path
    if not any(p for p in source.rglob("*.java") if not set(p.relative_to(source).parts) & SKIPPED):
        return []
    target = posixpath.normpath(posixpath.join("/app", path))
    jar = f"{project.name or source.name}.jar"
    classes = "/tmp/daneel-classes"
    return [
        f"RUN cd {target} && javac -d {classes} -implicit:none -cp '*' -sourcepath \"{_DANEEL_JAVA}\" {_JAVA_SOURCES}"
        f" && jar --create --file {jar} -C {classes} . && rm -rf {classes}"
    ]


def write_context(project: Project, epoch: int) -> Path:
    """Write DIR/.daneel-build afresh: Dockerfile, requirements.txt and app/; every file dated `epoch`."""
    context = project.root / CONTEXT
    shutil.rmtree(context, ignore_errors=True)
    (context / "app").mkdir(parents=True)
    (context / "Dockerfile").write_text(dockerfile(project))
    if project.requirements is not None:
        shutil.copyfile(project.requirements, context / "requirements.txt")
    for source in sorted(_sources(project.root)):
        target = context / "app" / source.relative_to(project.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o755 if os.access(source, os.X_OK) else 0o644)
    for path in sorted(context.rglob("*"), reverse=True):  # children first: dating a file touches its folder
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (epoch, epoch))
    os.utime(context, (epoch, epoch))
    return context


def _sources(root: Path) -> Iterator[Path]:
    """The project's files, leaving out SKIPPED, compiled Python and folder links."""
    for current, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if f not in SKIPPED and not Path(current, f).is_symlink())
        for name in sorted(files):
            path = Path(current, name)
            if name not in SKIPPED and not name.endswith((".pyc", ".pyo")) and path.is_file():
                yield path


def build_command(engine: str, image: str, context: Path) -> list[str]:
    return [engine, "bud" if engine == "buildah" else "build", "-t", image, str(context)]


def _working_engine(wanted: str | None) -> str:
    """The first engine that answers (only `wanted`, when given); when none does, an error saying why each does not."""
    reasons = []
    for engine in [wanted] if wanted else ENGINES:
        reason = probe(engine)
        if reason is None:
            return engine
        reasons.append(f"{engine}: {reason}")
    failure = reasons[0] if wanted else f"no working container engine ({'; '.join(reasons)})"
    raise click.ClickException(f"{failure}; run with --print to write the build context and print its build command")


def probe(engine: str) -> str | None:
    """Why `engine` cannot build here, or None when it can: installed, and its daemon (if any) answers."""
    if shutil.which(engine) is None:
        return "not installed"
    try:
        answer = subprocess.run([engine, "info"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if answer.returncode == 0:
        return None
    lines = [line.strip() for line in (answer.stderr or answer.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"`{engine} info` exited with {answer.returncode}"


def _installed_engine(wanted: str | None) -> str:
    return wanted or next((engine for engine in ENGINES if shutil.which(engine)), ENGINES[0])


def _run(engine: str, command: list[str]) -> None:
    click.echo(f"$ {shlex.join(command)}", err=True)
    try:
        code = subprocess.call(command)
    except OSError as exc:
        raise click.ClickException(f"{engine}: {exc}") from None
    if code != 0:
        raise click.ClickException(f"{engine} build failed with exit code {code}")


def _epoch(environ: Mapping[str, str]) -> int:
    value = environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return _EPOCH_1980
    if not value.isdigit():
        raise DaneelError(f"SOURCE_DATE_EPOCH: expected seconds since 1970, got {value!r}")
    return int(value)
