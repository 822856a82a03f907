#!/usr/bin/env python3
"""docs/openapi.yaml stays true to the code: it validates as OpenAPI 3.1, it describes
exactly the routes the sandbox serves (cli/src/sandbox/mod.rs), and it lists every error
code the sandbox answers with. Usage: check_openapi.py ROOT"""

import re
import sys

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename


def fail(msg):
    print(f"openapi check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    root = sys.argv[1]
    spec, _ = read_from_filename(f"{root}/docs/openapi.yaml")
    validate(spec)  # raises with the reason
    if not str(spec.get("openapi", "")).startswith("3.1"):
        fail("not OpenAPI 3.1")

    src = open(f"{root}/cli/src/sandbox/mod.rs", encoding="utf-8").read()
    served = set()
    for path, methods in re.findall(r'\.route\(\s*"([^"]+)",\s*([^)]*\))', src):
        # Compare templates without parameter names: {token} and {ftToken} are the same.
        template = re.sub(r"\{[^}]+\}", "{}", path)
        for m in re.findall(r"\b(get|post|put|delete|patch)\(", methods):
            served.add((m, template))
    if not served:
        fail("no routes found in cli/src/sandbox/mod.rs")
    documented = set()
    for path, item in spec["paths"].items():
        template = re.sub(r"\{[^}]+\}", "{}", path)
        for m in item:
            if m in ("get", "post", "put", "delete", "patch"):
                documented.add((m, template))
    if served != documented:
        fail(f"served but not documented: {sorted(served - documented)}; "
             f"documented but not served: {sorted(documented - served)}")

    codes = set(re.findall(r'const [A-Z_]+: &str = "(\d{6})";', src))
    listed = set(spec.get("x-fotp-error-codes", {}))
    if not codes or not codes <= listed:
        fail(f"error codes missing from x-fotp-error-codes: {sorted(codes - listed)}")
    if "webhooks" not in spec or "callback" not in spec["webhooks"]:
        fail("the callback webhook is not described")
    print(f"openapi check passed: {len(documented)} operations, {len(codes)} error codes")


if __name__ == "__main__":
    main()
