"""Build step: copy the knowledge base and the prompts into the wheel (``interviewer/_bundled/``).

They stay at the top of the repository for authors; ``interviewer.resources`` reads the wheel's copy when there
is one and the checkout's otherwise. Everything else about the package is in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("knowledge", "prompts")


class BuildWithData(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        for name in SHIPPED:
            target = Path(self.build_lib) / "interviewer" / "_bundled" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(root / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithData})
