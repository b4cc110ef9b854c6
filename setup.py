"""The compiled hot loops of the serving path (``src/tailorbot/csrc/``, one extension module
``tailorbot._native``); everything else about the package is in pyproject.toml. Plain C
against Python's own headers (no numpy headers, no toolchain beyond the C compiler pip uses
for any source build); where the build is missing, the pure-Python path each loop is tested
against serves instead."""

from pathlib import Path

from setuptools import Extension, setup

CSRC = Path("src/tailorbot/csrc")

setup(
    ext_modules=[
        Extension(
            "tailorbot._native",
            sorted(str(path) for path in CSRC.glob("*.c")),
            depends=sorted(str(path) for path in CSRC.glob("*.h")),
            # no fused multiply-adds: the same sums on every x86-64 and ARM build
            extra_compile_args=["-O3", "-ffp-contract=off"],
            # without a C compiler the install still succeeds and the Python path serves
            # (the suite requires the build under CI=true: tests/test_native.py)
            optional=True,
        )
    ]
)
