"""The installed package, its library, and the ctypes declarations against fotp.h."""

from __future__ import annotations

import ctypes
import os
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import fotp
from fotp import _ffi
from _support import HEADER, REPO


def test_runs_against_the_installed_package() -> None:
    src = REPO / "bindings" / "python" / "src"
    pkg = Path(fotp.__file__).resolve()
    assert src not in pkg.parents, f"tests imported the source tree: {pkg}"
    assert (pkg.parent / "py.typed").is_file()
    if not os.environ.get("FOTP_LIBRARY"):
        # The wheel carries the library inside the package.
        assert Path(fotp.library_path()).parent == pkg.parent
        assert (pkg.parent / _ffi.LIBRARY_FILENAME).is_file()


def test_versions() -> None:
    assert fotp.__version__ == "0.1.0"
    assert fotp.library_version() == fotp.__version__


def test_fotp_library_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOTP_LIBRARY", str(tmp_path / "nope.so"))
    assert _ffi.library_candidates() == [tmp_path / "nope.so"]
    monkeypatch.delenv("FOTP_LIBRARY")
    assert (
        _ffi.library_candidates()[0] == Path(_ffi.__file__).resolve().parent / _ffi.LIBRARY_FILENAME
    )


def test_missing_library_is_a_clear_import_error(tmp_path: Path) -> None:
    import subprocess

    env = dict(os.environ, FOTP_LIBRARY=str(tmp_path / "missing.so"))
    r = subprocess.run(
        [sys.executable, "-c", "import fotp"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "FOTP_LIBRARY" in r.stderr and "missing.so" in r.stderr


def test_enums_have_the_c_values() -> None:
    assert [(k.name, int(k)) for k in fotp.ErrorKind] == [
        ("INVALID_ARGUMENT", 1),
        ("CONFIG", 2),
        ("NETWORK", 3),
        ("TIMEOUT", 4),
        ("HTTP_STATUS", 5),
        ("API", 6),
        ("DECODE", 7),
        ("EXHAUSTED", 8),
        ("INTERNAL", 99),
    ]
    assert [(s.name, int(s)) for s in fotp.Status] == [
        ("PROCESSING", 0),
        ("FAILED", 1),
        ("SUCCESS", 2),
        ("UNKNOWN", 255),
    ]
    assert fotp.Status.SUCCESS.is_final and not fotp.Status.PROCESSING.is_final


def _header_macros() -> dict[str, int]:
    text = HEADER.read_text()
    return {
        m[1]: int(m[2])
        for m in re.finditer(r"#define\s+(FOTP_\w+)\s+\(?(-?\d+)\)?\s*$", text, re.M)
    }


def test_error_kinds_and_statuses_match_the_header() -> None:
    macros = _header_macros()
    text = HEADER.read_text()
    for k in fotp.ErrorKind:
        assert macros.get(f"FOTP_ERROR_{k.name}") == int(k), k
    for s in fotp.Status:
        m = re.search(rf"\bFOTP_STATUS_{s.name}\s*=\s*(\d+)", text)
        assert m and int(m[1]) == int(s), s
    for o in fotp.SettleOutcome:
        m = re.search(rf"\bFOTP_SETTLE_{o.name}\s*=\s*(\d+)", text)
        assert m and int(m[1]) == int(o), o
    assert len(re.findall(r"\bFOTP_SETTLE_\w+\s*=", text)) == len(fotp.SettleOutcome)


EXCEPTIONS: list[tuple[type[fotp.FotpError], fotp.ErrorKind, tuple[type[BaseException], ...]]] = [
    (fotp.InvalidArgument, fotp.ErrorKind.INVALID_ARGUMENT, (ValueError,)),
    (fotp.ConfigError, fotp.ErrorKind.CONFIG, ()),
    (fotp.NetworkError, fotp.ErrorKind.NETWORK, (ConnectionError, OSError)),
    (fotp.Timeout, fotp.ErrorKind.TIMEOUT, (TimeoutError, OSError)),
    (fotp.HttpStatusError, fotp.ErrorKind.HTTP_STATUS, ()),
    (fotp.ApiError, fotp.ErrorKind.API, ()),
    (fotp.DecodeError, fotp.ErrorKind.DECODE, ()),
    (fotp.ExhaustedError, fotp.ErrorKind.EXHAUSTED, ()),
    (fotp.InternalError, fotp.ErrorKind.INTERNAL, ()),
]


@pytest.mark.parametrize(("cls", "kind", "also"), EXCEPTIONS)
def test_exception_classes(
    cls: type[fotp.FotpError], kind: fotp.ErrorKind, also: tuple[type[BaseException], ...]
) -> None:
    e = cls("it broke")
    assert isinstance(e, fotp.FotpError) and isinstance(e, Exception)
    for base in also:
        assert isinstance(e, base)
    assert e.kind is kind and e.message == "it broke"
    assert "it broke" in str(e)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls and back.message == "it broke"


def test_api_and_http_status_attributes() -> None:
    e = fotp.ApiError("unknown ftId", "200002", 200)
    assert (e.code, e.message, e.status) == ("200002", "unknown ftId", 200)
    assert str(e) == "unknown ftId (code 200002)"
    back = pickle.loads(pickle.dumps(e))
    assert (back.code, back.message, back.status) == ("200002", "unknown ftId", 200)
    h = fotp.HttpStatusError("HTTP 503", 503)
    assert h.status == 503 and pickle.loads(pickle.dumps(h)).status == 503


def test_callback_ack() -> None:
    assert fotp.CALLBACK_ACK == b'{"code":"0"}'
    assert fotp.CALLBACK_ACK == (REPO / "tests" / "data" / "callback-ack.json").read_bytes().strip()


# --- declarations against the header -------------------------------------------------------


def _strip(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def _header_functions() -> dict[str, tuple[str, list[str]]]:
    """name -> (return type, [parameter types]) of every fotp_* prototype in fotp.h."""
    text = _strip(HEADER.read_text())
    out: dict[str, tuple[str, list[str]]] = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(fotp_\w+)\s*\(([^;{}()]*)\)\s*;", text):
        ret, name, params = " ".join(m[1].split()), m[2], m[3].strip()
        ret = re.sub(r"^(extern\s+)", "", ret)
        plist = [] if params in ("", "void") else [" ".join(p.split()) for p in params.split(",")]
        # Drop parameter names: the type is all but the last identifier.
        types = [re.sub(r"\s*\b[A-Za-z_]\w*$", "", p).strip() for p in plist]
        out[name] = (ret, types)
    return out


def _typedefs() -> dict[str, str]:
    text = _strip(HEADER.read_text())
    return {
        m[2]: m[1] for m in re.finditer(r"typedef\s+(u?int\d+_t|int|unsigned)\s+(\w+)\s*;", text)
    }


SCALARS: dict[str, Any] = {
    "int": ctypes.c_int,
    "int32_t": ctypes.c_int32,
    "uint8_t": ctypes.c_uint8,
    "uint16_t": ctypes.c_uint16,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "uintptr_t": ctypes.c_size_t,
    "bool": ctypes.c_bool,
}


def _expected(ctype: str, is_return: bool, typedefs: dict[str, str]) -> Any:
    t = re.sub(r"\b(const|struct|enum)\b", "", ctype)
    stars = t.count("*")
    base = t.replace("*", "").strip()
    if stars == 0:
        if base == "void":
            return None
        if base == "fotp_status":
            return SCALARS[typedefs.get("fotp_status", "int")]
        if base.endswith("_fn"):
            return ctypes.c_void_p  # a callback typedef (fotp_log_fn): passed as an address

        return SCALARS[base]
    if is_return:
        # Library-owned memory, strings included, comes back as an address (never c_char_p).
        return ctypes.c_void_p
    if stars == 1:
        if base == "char" and not re.search(r"\bconst\b", ctype):
            return ctypes.c_void_p  # a buffer the function writes: passed as an address
        if base in ("char", "uint8_t"):
            return ctypes.c_char_p
        if base == "bool":
            return ctypes.POINTER(ctypes.c_bool)
        return ctypes.c_void_p
    if base == "char":
        return ctypes.POINTER(ctypes.c_char_p)
    return ctypes.POINTER(ctypes.c_void_p)


def test_header_declares_what_the_binding_declares() -> None:
    header = _header_functions()
    assert len(header) >= 59, "the header parser found too few functions"
    # Every function of the header is bound, the trackers of section 8 included.
    assert any(n.startswith("fotp_tracker_") for n in header)
    assert set(header) == set(_ffi.SIGNATURES), (
        f"only in fotp.h: {sorted(set(header) - set(_ffi.SIGNATURES))}; "
        f"only in _ffi.py: {sorted(set(_ffi.SIGNATURES) - set(header))}"
    )


def test_declarations_match_the_header_types_and_arity() -> None:
    header = _header_functions()
    typedefs = _typedefs()
    for name, (restype, argtypes) in _ffi.SIGNATURES.items():
        if name not in header:
            continue  # reported by test_header_declares_what_the_binding_declares
        ret, params = header[name]
        assert len(params) == len(argtypes), (
            f"{name}: arity {len(argtypes)} != header {len(params)}"
        )
        assert restype is _expected(ret, True, typedefs), f"{name}: restype {restype} vs {ret!r}"
        assert restype is not ctypes.c_char_p, name
        for i, (have, ctype) in enumerate(zip(argtypes, params, strict=True)):
            assert have is _expected(ctype, False, typedefs), f"{name} arg {i}: {have} vs {ctype!r}"


def test_every_declared_function_is_set_up_on_the_library() -> None:
    for name, (restype, argtypes) in _ffi.SIGNATURES.items():
        fn = getattr(_ffi.lib, name)
        assert fn.restype is restype and tuple(fn.argtypes) == argtypes, name


def test_only_short_calls_keep_the_gil() -> None:
    # ctypes marks PyDLL functions (called with the GIL held) with this flag.
    pythonapi = int(getattr(ctypes, "_FUNCFLAG_PYTHONAPI"))
    assert _ffi.KEEPS_GIL <= set(_ffi.SIGNATURES), sorted(_ffi.KEEPS_GIL - set(_ffi.SIGNATURES))
    for name in _ffi.SIGNATURES:
        flags = int(getattr(getattr(_ffi.lib, name), "_flags_"))
        assert bool(flags & pythonapi) == (name in _ffi.KEEPS_GIL), name
    # Whatever can block (network, Redis, the tracker's lock, files, waits, cancelling) must let
    # the other threads run meanwhile.
    blocking = {
        "fotp_verify",
        "fotp_query",
        "fotp_wait",
        "fotp_confirm_callback",
        "fotp_client_new",
        "fotp_client_free",
        "fotp_config_from_env",
        "fotp_config_set_ca_bundle",
        "fotp_cancel_trigger",
        "fotp_set_logger",
        "fotp_set_logger_fields",
        "fotp_set_log_level",
    } | {n for n in _ffi.SIGNATURES if n.startswith("fotp_tracker_")}
    assert not blocking & _ffi.KEEPS_GIL, sorted(blocking & _ffi.KEEPS_GIL)


def test_fast_result_constructors_set_every_field_in_order() -> None:
    import dataclasses

    from fotp import _types

    cases: list[tuple[type, tuple[str, ...], Any]] = [
        (fotp.Verification, _types._VERIFICATION_FIELDS, _types.make_verification),
        (fotp.QueryResult, _types._QUERY_RESULT_FIELDS, _types.make_query_result),
        (fotp.Callback, _types._CALLBACK_FIELDS, _types.make_callback),
    ]
    for cls, names, make in cases:
        assert tuple(f.name for f in dataclasses.fields(cls)) == names, cls
        values = tuple(f"value {i}" for i in range(len(names)))
        made: Any = make(*values)
        plain: Any = cls(*values)
        assert dataclasses.astuple(made) == values
        assert type(made) is cls
        assert made == plain and hash(made) == hash(plain) and repr(made) == repr(plain)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, names[0], "changed")
        assert pickle.loads(pickle.dumps(made)) == plain


def test_checkout_falls_back_to_the_repository_build(monkeypatch: pytest.MonkeyPatch) -> None:
    # _ffi.py of the source tree, loaded on its own (it imports only the standard library).
    import importlib.util

    monkeypatch.delenv("FOTP_LIBRARY", raising=False)
    src = REPO / "bindings" / "python" / "src" / "fotp" / "_ffi.py"
    spec = importlib.util.spec_from_file_location("fotp_checkout_ffi", src)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    name = _ffi.LIBRARY_FILENAME
    assert mod.library_candidates() == [
        src.parent / name,
        REPO / "target" / "release" / name,
        REPO / "target" / "debug" / name,
    ]
    if not (src.parent / name).exists():
        assert mod.LIBRARY_PATH == REPO / "target" / "release" / name
