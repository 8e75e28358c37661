"""The test tiers' rules: a test whose requirement is missing skips locally with the reason and fails in CI; an
extended test runs only when asked for."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = '''
import pytest

@pytest.mark.needs_jdk
def test_needs_a_jdk():
    pass
'''


TIERS = '''
import pytest

def test_fast():
    pass

@pytest.mark.slow
def test_slow():
    pass

@pytest.mark.slow
@pytest.mark.extended
def test_extended():
    pass
'''


def _run(tmp_path: Path, strict: bool = False, probe: str = PROBE, args=()) -> subprocess.CompletedProcess:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(probe)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: s\n    extended: e\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MOBILEKIT_STRICT")}
    env["PATH"] = str(Path(sys.executable).parent)  # no javac on this PATH
    if strict:
        env["MOBILEKIT_STRICT"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-v", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def test_missing_requirement_skips_locally_with_the_reason(tmp_path):
    r = _run(tmp_path, strict=False)
    assert r.returncode == 0 and "1 skipped" in r.stdout and "needs a JDK" in r.stdout, r.stdout[-2000:]


def test_missing_requirement_fails_in_ci(tmp_path):
    r = _run(tmp_path, strict=True)
    assert r.returncode == 1 and "1 error" in r.stdout and "never skipped" in r.stdout, r.stdout[-2000:]


def _passed(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stdout[-2000:]
    return sorted(line.split("::")[1].split()[0] for line in result.stdout.splitlines() if " PASSED" in line)


@pytest.mark.slow  # five pytest sessions
def test_extended_tests_run_only_when_asked_for(tmp_path):
    assert _passed(_run(tmp_path, probe=TIERS)) == ["test_fast", "test_slow"]  # the full run (CI)
    assert _passed(_run(tmp_path, probe=TIERS, args=["-m", "not slow"])) == ["test_fast"]  # the fast lane
    assert _passed(_run(tmp_path, probe=TIERS, args=["-m", "extended"])) == ["test_extended"]
    assert _passed(_run(tmp_path, probe=TIERS, args=["--extended"])) == ["test_extended", "test_fast", "test_slow"]
    assert _passed(_run(tmp_path, probe=TIERS, args=["test_probe.py::test_extended"])) == ["test_extended"]


def test_an_extended_test_that_is_not_slow_is_refused(tmp_path):
    probe = "import pytest\n\n@pytest.mark.extended\ndef test_lone():\n    pass\n"
    r = _run(tmp_path, probe=probe, args=["-m", "not slow"])
    assert r.returncode == 4 and "an extended test must be marked slow too: test_probe.py::test_lone" in r.stderr, \
        r.stdout[-1000:] + r.stderr[-1000:]
