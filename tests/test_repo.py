"""The README's two quickstart commands are the ones CI and users run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quickstart():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, re.S)


def test_quickstart_is_two_single_line_commands():
    commands = quickstart()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert commands[0].endswith("mobilekit build --arch squeezenet")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quickstart()[1] in ci

