"""Build hook for the cffi extensions in csrc/ (metadata lives in pyproject.toml).

Every folder csrc/<name>/ becomes the private module ``chaosmagnet._<name>``;
see csrc/build.py.  cffi registers ``cffi_modules`` as a setup() keyword, which
pyproject.toml cannot express, hence this file.
"""

from pathlib import Path

from setuptools import setup

CSRC = Path(__file__).resolve().parent / "csrc"
MODULES = sorted(p.name for p in CSRC.iterdir() if p.is_dir() and any(p.glob("*.c")))

setup(cffi_modules=[f"csrc/build.py:{name}" for name in MODULES])
