"""The test tiers' rule: a test whose requirement is missing skips locally with the reason and fails in CI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROBE = '''
import pytest

@pytest.mark.needs_jdk
def test_needs_a_jdk():
    pass
'''


def _run(tmp_path: Path, strict: bool) -> subprocess.CompletedProcess:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MOBILEKIT_STRICT")}
    env["PATH"] = str(Path(sys.executable).parent)  # no javac on this PATH
    if strict:
        env["MOBILEKIT_STRICT"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def test_missing_requirement_skips_locally_with_the_reason(tmp_path):
    r = _run(tmp_path, strict=False)
    assert r.returncode == 0 and "1 skipped" in r.stdout and "needs a JDK" in r.stdout, r.stdout[-2000:]


def test_missing_requirement_fails_in_ci(tmp_path):
    r = _run(tmp_path, strict=True)
    assert r.returncode == 1 and "1 error" in r.stdout and "never skipped" in r.stdout, r.stdout[-2000:]
