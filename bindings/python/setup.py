"""Build glue: copies libfotp into the package and tags the wheel for this platform.

The library comes from FOTP_LIBRARY (a path) or the repository's ../../target/release (run
`cargo build --release` in the repository root first). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
if sys.platform == "darwin":
    LIBNAME = "libfotp.dylib"
elif sys.platform == "win32":
    LIBNAME = "fotp.dll"
else:
    LIBNAME = "libfotp.so"


def find_library() -> Path:
    explicit = os.environ.get("FOTP_LIBRARY")
    path = Path(explicit) if explicit else HERE.parent.parent / "target" / "release" / LIBNAME
    if not path.is_file():
        where = f"FOTP_LIBRARY={explicit}" if explicit else str(path)
        raise SystemExit(
            f"fotp: {LIBNAME} not found at {where}; run `cargo build --release` in the "
            "repository root or set FOTP_LIBRARY to the library's path"
        )
    return path


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "fotp" / LIBNAME
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(find_library(), dest)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [
            *super().get_outputs(include_bytecode),
            str(Path(self.build_lib) / "fotp" / LIBNAME),
        ]


class BinaryDistribution(Distribution):
    """The package carries a native library: platform wheel, platlib install."""

    def has_ext_modules(self) -> bool:
        return True


class BdistWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        # ctypes only: any Python 3, no CPython ABI, but this platform's library.
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(cmdclass={"build_py": BuildPy, "bdist_wheel": BdistWheel}, distclass=BinaryDistribution)
