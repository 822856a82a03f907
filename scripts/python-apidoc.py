"""Builds the Python API reference (pdoc, from the docstrings) into the directory argv[1]; any
warning pdoc gives (a broken reference, an unresolvable name) fails the build."""

import sys
import warnings

import pdoc

import fotp

# The asyncio classes and the ASGI receiver load lazily; pdoc reads the module's namespace, so load them first.
fotp.AsyncClient, fotp.AsyncTracker, fotp.asgi_callback  # noqa: B018

with warnings.catch_warnings():
    warnings.simplefilter("error")
    pdoc.pdoc("fotp", output_directory=__import__("pathlib").Path(sys.argv[1]))
print(f"API reference written to {sys.argv[1]}")
