"""The Java child: `java -cp ... io.daneel.Worker SOCKET CLASS SCAN PARAMETERS`.

daneel's own classes (the `io.daneel.Component` interface and the worker) ship as sources in this
package and are compiled with `javac` at first use into a cache folder named by a hash of the
sources. The user's component is `.java` sources (beside each other, or under `src/` as a Maven
project lays them out, tests left out) that daneel compiles with `javac` into the cache, under a
hash of their text; or, with no sources, a jar in the folder or its `target/`. daneel does not run
Maven, which cannot build offline without its plugins, and whose build would not know daneel's
interface. Jars in `lib/` or `target/dependency/` join the classpath as dependencies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from daneel.errors import LoadError
from daneel.runtime.languages.child import Command, Prepare

log = logging.getLogger("daneel.runtime.java")

SOURCES = Path(__file__).with_name("java")
COMPILE_TIMEOUT_S = 600.0
_SKIPPED = {"target", "node_modules", ".git", "test"}


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """`$DANEEL_JAVA_CACHE`, else ~/.cache/daneel/java; read when called."""
    env = os.environ if environ is None else environ
    return Path(env.get("DANEEL_JAVA_CACHE") or Path.home() / ".cache" / "daneel" / "java")


def preparer(folder: Path, parameters: dict[str, Any], implementation: str) -> Prepare:
    def prepare() -> Command:
        java, javac = _tool("java", folder), _tool("javac", folder)
        runtime = compiled("daneel", sorted(SOURCES.rglob("*.java")), [], javac)
        classes, jars = user_classes(folder, runtime, javac)
        classpath = os.pathsep.join(str(path) for path in [*classes, *jars, *_libraries(folder), runtime])
        scan = os.pathsep.join(str(path) for path in [*classes, *jars])
        parameters_json = json.dumps(parameters)

        def command(socket: str) -> Sequence[str]:
            return [java, "-cp", classpath, "io.daneel.Worker", socket, implementation, scan, parameters_json]

        return command

    return prepare


def _tool(name: str, folder: Path) -> str:
    found = shutil.which(name)
    if found is None:
        raise LoadError(f"{folder}: a Java component needs {name} on the PATH; install a JDK, 17 or later")
    return found


def user_classes(folder: Path, runtime: Path, javac: str) -> tuple[list[Path], list[Path]]:
    """The folders of classes and the jars that hold the user's component."""
    sources = java_sources(folder)
    if sources:
        dependencies = [*_jars(folder), *_libraries(folder), runtime]
        return [compiled("component", sources, dependencies, javac, root=folder)], _jars(folder)
    jars = _jars(folder)
    if not jars:
        raise LoadError(f"{folder}: no Java component; expected a .jar, .java sources or a pom.xml")
    return [], jars


def java_sources(folder: Path) -> list[Path]:
    """The folder's `.java` files, and those under `src/` but not its tests."""
    found = list(folder.glob("*.java"))
    if (folder / "src").is_dir():
        found += [p for p in (folder / "src").rglob("*.java") if not _SKIPPED & set(p.relative_to(folder).parts)]
    return sorted(found)


def _jars(folder: Path) -> list[Path]:
    built = folder / "target"
    found = [*folder.glob("*.jar"), *(built.glob("*.jar") if built.is_dir() else [])]
    return sorted(p for p in found if not p.name.endswith(("-sources.jar", "-javadoc.jar")))


def _libraries(folder: Path) -> list[Path]:
    """Dependencies: jars in `lib/`, or where `mvn dependency:copy-dependencies` puts them."""
    found: list[Path] = []
    for lib in (folder / "lib", folder / "target" / "dependency"):
        found += sorted(lib.glob("*.jar")) if lib.is_dir() else []
    return found


def compiled(
    what: str,
    sources: list[Path],
    classpath: Iterable[Path],
    javac: str,
    root: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """The classes of `sources`, compiled once into the cache under a hash of their text and classpath."""
    paths = list(classpath)
    digest = hashlib.sha256()
    for path in [*sources, *paths]:
        digest.update(str(path).encode())
        if path.is_file():
            digest.update(path.read_bytes() if path.suffix == ".java" else str(path.stat().st_mtime_ns).encode())
    target = (cache or cache_dir()) / f"{what}-{digest.hexdigest()[:16]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{what}-", dir=target.parent))
    command = [javac, "-encoding", "UTF-8", "-d", str(building)]
    if paths:
        command += ["-cp", os.pathsep.join(str(p) for p in paths)]
    log.info("compiling %d Java source file(s) of %s into %s", len(sources), root or what, target)
    try:
        done = subprocess.run([*command, *map(str, sources)], capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        shutil.rmtree(building, ignore_errors=True)
        raise LoadError(f"{root or what}: javac took over {COMPILE_TIMEOUT_S:.0f}s") from None
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise LoadError(f"{root or what}: javac failed: {done.stderr.strip()[-2000:]}")
    try:
        building.rename(target)
    except OSError:  # another worker compiled the same sources meanwhile
        shutil.rmtree(building, ignore_errors=True)
    return target
