"""The package's public surface reads as Python users expect (issue 18)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import fotp


def test_dir_lists_the_lazy_asyncio_classes() -> None:
    names = dir(fotp)
    assert {"AsyncClient", "AsyncTracker", "asgi_callback"} <= set(names)
    assert set(fotp.__all__) <= set(names)


def test_importing_the_wsgi_receiver_needs_no_wsgiref_types() -> None:
    # wsgiref.types exists only from Python 3.11; requires-python allows 3.10.
    code = (
        "import sys, fotp; fotp.wsgi_callback(lambda cb: None); "
        "sys.exit('wsgiref.types' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_messages_have_no_kind_prefix() -> None:
    with fotp.Client("http://127.0.0.1:9", app_id="a", app_secret="b") as c:
        with pytest.raises(fotp.InvalidArgument) as e:
            c.verify("")
    assert "error:" not in str(e.value) and "ftId" in str(e.value)
    assert str(e.value) == e.value.message


def test_insecure_url_names_the_python_argument() -> None:
    with pytest.raises(fotp.ConfigError) as e:
        fotp.Client("http://otp.example.com", app_id="a", app_secret="b")
    assert "allow_insecure_http=True" in str(e.value)
    fotp.Client("http://otp.example.com", app_id="a", app_secret="b", allow_insecure_http=True).close()
