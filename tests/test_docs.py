"""What the project's own text points readers to exists, and the install notes a student needs are there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_file_the_requirements_mention_is_in_the_project():
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        comments = " ".join(line for line in (ROOT / requirements).read_text().splitlines() if line.lstrip().startswith("#"))
        for named in re.findall(r"[\w./-]+\.(?:md|txt|py|toml)\b", comments):
            assert (ROOT / named).is_file(), f"{requirements} points to {named}, which is not in the project"


def test_the_readme_has_a_cpu_only_install_line_marked_untested():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**CPU-only laptops.**"):]
    section = section[:section.index("\n## ")]
    assert "untested" in section
    assert "pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu" in section
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("torch"))
    assert f"torch=={pins['torch']} torchvision=={pins['torchvision']}" in section  # the same pins as requirements.txt
