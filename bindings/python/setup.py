"""Build glue: compiles libfotp with setuptools-rust and puts it inside the package.

Why setuptools-rust and not maturin: the package is pure Python over ctypes, and the native part
is a plain C library (the crate capi/, cdylib) that the C and Go users get too. setuptools-rust
builds exactly that (``Binding.NoBinding``) while the rest stays ordinary setuptools; maturin is
made for PyO3/cffi/uniffi extension modules.

Where the Rust sources are:

- in a checkout: the repository root, two directories up;
- in an sdist: ``rust/``, which ``sdist`` below fills with the crate (Cargo.toml trimmed to the
  library's workspace members, Cargo.lock, build.rs, src, capi, include/fotp.h, licences).

``FOTP_LIBRARY`` (a path to a built libfotp.so) skips cargo and packages that file: the
repository's test scripts use it to package the library they already built. ``CARGO_TARGET_DIR``
is honoured by cargo, so CI builds the sdist with the dependencies it compiled before.
Everything else is in pyproject.toml.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.dist import Distribution
from setuptools_rust import Binding, RustExtension, Strip
from setuptools_rust.build import build_rust

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

# What the sdist carries of the repository (paths relative to its root).
RUST_FILES = ["Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "LICENSE-MIT",
              "LICENSE-APACHE", "include/fotp.h"]
RUST_DIRS = ["src", "capi"]


def rust_root() -> Path:
    sdist_copy = HERE / "rust"
    if (sdist_copy / "Cargo.toml").is_file():
        return sdist_copy
    checkout = HERE.parent.parent
    if (checkout / "capi" / "Cargo.toml").is_file():
        return checkout
    raise SystemExit(f"fotp: the Rust sources are neither in {sdist_copy} nor in {checkout}")


def cargo_version(root: Path) -> str:
    """The `version` of Cargo.toml's [workspace.package]: the release's one version."""
    text = (root / "Cargo.toml").read_text(encoding="utf-8")
    section = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[)", text, re.M | re.S)
    found = section and re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.M)
    if not found:
        raise SystemExit(f"fotp: no version in [workspace.package] of {root / 'Cargo.toml'}")
    return found.group(1)


def library_only_manifest(text: str) -> str:
    """The root Cargo.toml for the sdist: the library's workspace members only, and no
    examples, tests or dev-dependencies (their files are not in the sdist)."""
    kept = []
    for block in re.split(r"(?m)^(?=\[)", text):
        header = block.split("\n", 1)[0].strip()
        if header in ("[[example]]", "[[test]]", "[[bench]]", "[dev-dependencies]"):
            continue
        kept.append(block)
    out = "".join(kept)
    out = re.sub(r"(?m)^members = .*$", 'members = [".", "capi"]', out)
    out = re.sub(r"(?m)^default-members = .*$", 'default-members = [".", "capi"]', out)
    return out


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        root = rust_root()
        dest = Path(base_dir) / "rust"
        for name in RUST_FILES:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, dest / name)
        for name in RUST_DIRS:
            shutil.copytree(root / name, dest / name)
        manifest = dest / "Cargo.toml"
        manifest.write_text(library_only_manifest(manifest.read_text(encoding="utf-8")),
                            encoding="utf-8")


class BuildRust(build_rust):
    def get_dylib_ext_path(self, ext: RustExtension, target_fname: str) -> str:
        # The name _ffi.py loads (not a CPython extension module name: this is ctypes).
        return str(Path(super().get_dylib_ext_path(ext, target_fname)).parent / LIBNAME)


class BuildPy(build_py):
    """With FOTP_LIBRARY: packages that file instead of building with cargo."""

    def run(self) -> None:
        super().run()
        explicit = os.environ.get("FOTP_LIBRARY")
        if explicit:
            path = Path(explicit)
            if not path.is_file():
                raise SystemExit(f"fotp: FOTP_LIBRARY={explicit} is not a file")
            dest = Path(self.build_lib) / "fotp" / LIBNAME
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


class BinaryDistribution(Distribution):
    """The package carries a native library: platform wheel, platlib install."""

    def has_ext_modules(self) -> bool:
        return True


class BdistWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        # ctypes only: any Python 3, no CPython ABI, but this platform's library (auditwheel
        # then turns linux_* into the manylinux tag the library's glibc symbols allow).
        _, _, plat = super().get_tag()
        return "py3", "none", plat


ROOT = rust_root()
rust_extensions = []
if not os.environ.get("FOTP_LIBRARY"):
    rust_extensions.append(
        RustExtension(
            "fotp.libfotp",
            path=str(ROOT / "capi" / "Cargo.toml"),
            binding=Binding.NoBinding,
            # Installed stripped, as `make install` does.
            strip=Strip.All,
        )
    )

setup(
    version=cargo_version(ROOT),
    rust_extensions=rust_extensions,
    cmdclass={
        "build_py": BuildPy,
        "build_rust": BuildRust,
        "bdist_wheel": BdistWheel,
        "sdist": Sdist,
    },
    distclass=BinaryDistribution,
    zip_safe=False,
)
