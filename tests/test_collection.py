"""The suite collects under the `pytest` script as under `python -m pytest`.

`python -m pytest` puts the working directory on sys.path and the script does not, so a test module
that imports a helper as `tests.…` collects under the script only if pytest's own settings put the
repository root there.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_pytest_script_collects_a_module_that_imports_tests_helpers() -> None:
    pytest_script = Path(sys.executable).with_name("pytest")
    module = "tests/k8s/test_reconcile.py"
    assert "from tests." in (ROOT / module).read_text()
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    command = [str(pytest_script), "--collect-only", "-q", "-p", "no:cacheprovider", module]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ tests? collected in .*", summary), result.stdout
