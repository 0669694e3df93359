"""cffi (API mode) builders for the C kernels.

Each folder ``csrc/<name>/`` holds ``*.h`` and ``*.c`` files and is compiled
into the private extension ``chaosmagnet._<name>``, linked with libm and any
system library a source names in a ``LIBRARIES:`` comment.  The declarations cffi
needs are read from the headers, between the markers ``CDEF-BEGIN`` and
``CDEF-END``, so they are written once.  A build failure is fatal: there is no
pure-Python fallback.

Code from another project lives in ``csrc/<name>/vendor/``, unchanged: its
``*.c`` are compiled into the module, its ``*.S`` assembled and linked (setuptools
compiles no assembly), its headers are found but not given to cffi.  A header may
say ``ARCH: x86_64`` (the module is built only on that machine type: its Python
side then reports it unavailable) and ``COMPILE-ARGS: ...`` (flags for that module).
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from cffi import FFI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from modules import module_names  # noqa: E402  (csrc/modules.py, shared with setup.py)

CSRC = Path(__file__).resolve().parent
_CDEF = re.compile(r"/\*\s*CDEF-BEGIN\s*\*/(.*?)/\*\s*CDEF-END\s*\*/", re.S)
# A source that needs a system library names it in a comment: "LIBRARIES: bz2 pthread".
_LIBRARIES = re.compile(r"LIBRARIES:((?:[ \t]+[A-Za-z0-9_+-]+)+)")
_COMPILE_ARGS = re.compile(r"COMPILE-ARGS:((?:[ \t]+-[A-Za-z0-9_=.+-]+)+)")

EXTRA_COMPILE_ARGS = ["-O3", "-std=c11", "-Wall", "-Wextra", "-fno-strict-aliasing"]


def make_builder(name: str) -> FFI:
    """Return the FFI builder for csrc/<name>/."""
    folder = CSRC / name
    headers = sorted(folder.glob("*.h"))
    sources = sorted(folder.glob("*.c"))
    if not sources:
        raise SystemExit(f"csrc/{name}: no C sources")
    cdefs = []
    for header in headers:
        found = _CDEF.findall(header.read_text())
        cdefs.extend(found)
    if not cdefs:
        raise SystemExit(f"csrc/{name}: no CDEF-BEGIN/CDEF-END section in any header")
    libraries = ["m"]
    for source in [*headers, *sources]:
        for found_libs in _LIBRARIES.findall(source.read_text()):
            libraries.extend(lib for lib in found_libs.split() if lib not in libraries)
    extra_args = list(EXTRA_COMPILE_ARGS)
    for header in headers:
        for found_args in _COMPILE_ARGS.findall(header.read_text()):
            extra_args.extend(found_args.split())
    include_dirs = [str(folder.relative_to(CSRC.parent))]
    objects: list[str] = []
    vendor = folder / "vendor"
    if vendor.is_dir():
        include_dirs.append(str(vendor.relative_to(CSRC.parent)))
        sources += sorted(vendor.glob("*.c"))
        objects = [_assemble(source, include_dirs, extra_args) for source in sorted(vendor.glob("*.S"))]
    ffi = FFI()
    ffi.cdef("\n".join(cdefs))
    includes = "\n".join(f'#include "{h.name}"' for h in headers)
    ffi.set_source(
        f"chaosmagnet._{name}",
        includes,
        sources=[str(s.relative_to(CSRC.parent)) for s in sources],
        include_dirs=include_dirs,
        extra_compile_args=extra_args,
        extra_objects=objects,
        libraries=libraries,
    )
    return ffi


def _assemble(source: Path, include_dirs: list[str], args: list[str]) -> str:
    """Assemble one ``.S`` file (C preprocessor first) into an object next to the build's."""
    out = CSRC.parent / "build" / "asm" / source.parent.parent.name / (source.stem + ".o")
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    flags = [f for f in args if f.startswith(("-m", "-O"))] + ["-fPIC"]
    includes = [f"-I{CSRC.parent / d}" for d in include_dirs]
    subprocess.run([*compiler, *flags, *includes, "-c", str(source), "-o", str(out)], check=True)
    return str(out)


_NAMES = module_names()
for _name in _NAMES:
    globals()[_name] = make_builder(_name)

if __name__ == "__main__":
    # `python csrc/build.py NAME` compiles one module in place, for development.
    for _name in sys.argv[1:] or _NAMES:
        globals()[_name].compile(tmpdir=str(CSRC.parent / "host"), verbose=True)
