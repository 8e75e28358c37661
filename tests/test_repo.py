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



def test_product_text_cites_nothing_users_do_not_have():
    """README, docs, help texts and code comments: no path into the developers' reference folder and no
    internal issue numbers."""
    files = [ROOT / "README.md", ROOT / "android_demo" / "README.md", *(ROOT / "docs").glob("*.md"),
             *(ROOT / "mobilekit").rglob("*.py")]
    for f in files:
        text = f.read_text()
        assert not re.search(r"\bshared/(notes|reference)|\bshared notes\b", text), f
        assert not re.search(r"(?<![\w&])#\d{1,3}\b(?!\w)", text.replace("#!/", "")), f


def test_every_option_has_help_text():
    import argparse

    from mobilekit.cli import build_parser

    missing = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, [*path, name])
            elif action.option_strings and not action.help:
                missing.append(" ".join([*path, action.option_strings[-1]]))

    walk(build_parser(), ["mobilekit"])
    assert missing == []
