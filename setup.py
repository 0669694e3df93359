"""Build hooks that pyproject.toml cannot express (metadata lives there).

* The cffi extensions: every folder csrc/<name>/ becomes the private module
  ``chaosmagnet._<name>`` (see csrc/build.py); cffi registers
  ``cffi_modules`` as a setup() keyword.
* The node files: firmware/ and boards/ sit beside host/ in the checkout, where
  they are edited and where a checkout's run uses them; a wheel carries copies
  as package data under ``chaosmagnet/_node_files/`` so that an installed
  chaos-host can simulate, flash and deploy from any folder
  (chaosmagnet.nodes.boards.project_root chooses).
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
sys.path.insert(0, str(CSRC))
from modules import module_names  # noqa: E402  (csrc/modules.py: which folders build here)

MODULES = module_names()
NODE_FOLDERS = ("firmware", "boards")


class build_py_with_node_files(build_py):
    """build_py that also copies firmware/ and boards/ into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout, which has them
        target = Path(self.build_lib) / "chaosmagnet" / "_node_files"
        for folder in NODE_FOLDERS:
            destination = target / folder
            if destination.exists():
                shutil.rmtree(destination)
            shutil.copytree(ROOT / folder, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(
    cffi_modules=[f"csrc/build.py:{name}" for name in MODULES],
    cmdclass={"build_py": build_py_with_node_files},
)
