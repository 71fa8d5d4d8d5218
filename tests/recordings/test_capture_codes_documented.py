"""Every error code capture can answer is in docs/capture.md's "What capture answers".

posthog-js drops every 4xx for good, so an operator reading the ledger or a client
author reading a refusal must find each code explained. The codes are read from
the source: every string given to IngestError, CaptureRefused, PayloadTooLarge or
Refusal, or to a parameter named `code`, `error_code` or `missing_code` of a
function that passes it on, directly or through a module constant.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
CAPTURE_MODULES = [
    *sorted((ROOT / "recordings" / "ingest").glob("*.py")),
    ROOT / "recordings" / "capture" / "endpoints.py",
    ROOT / "recordings" / "capture" / "admission.py",
    ROOT / "recordings" / "capture" / "store.py",
]
REFUSALS = {"IngestError", "CaptureRefused", "PayloadTooLarge", "Refusal"}
CODE_PARAMETERS = {"code", "error_code", "missing_code"}
CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _code_positions(tree: ast.Module) -> dict[str, set[int]]:
    """Function name -> positions of its parameters that carry an error code."""
    positions: dict[str, set[int]] = {name: {0} for name in REFUSALS}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            names = [arg.arg for arg in node.args.args]
            found = {i for i, name in enumerate(names) if name in CODE_PARAMETERS}
            if found:
                positions[node.name] = found
    return positions


def _constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def capture_codes(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    positions, constants = _code_positions(tree), _constants(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        wanted = positions.get(_name(node.func), set())
        args = [arg for i, arg in enumerate(node.args) if i in wanted]
        args += [kw.value for kw in node.keywords if kw.arg in CODE_PARAMETERS]
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                value = arg.value
            elif isinstance(arg, ast.Name) and arg.id in constants:
                value = constants[arg.id]
            else:
                continue
            if CODE.fullmatch(value):
                yield value


def answers_table() -> str:
    doc = (ROOT / "docs" / "capture.md").read_text()
    start = doc.index("## What capture answers")
    return doc[start : doc.index("\n#", start + 1)]


def test_it_finds_the_codes_it_should() -> None:
    codes = {code for path in CAPTURE_MODULES for code in capture_codes(path)}
    # One of each way a code is given, so the scan itself cannot silently miss.
    assert {"invalid_token", "invalid_gzip", "invalid_compressed_event"} <= codes
    assert "invalid_base64" in codes
    assert {"missing_session_id", "too_deep", "rate_limited"} <= codes


def test_every_capture_error_code_is_in_the_capture_doc() -> None:
    table = answers_table()
    codes = {code for path in CAPTURE_MODULES for code in capture_codes(path)}
    missing = sorted(code for code in codes if not re.search(rf"\b{code}\b", table))
    assert missing == [], f"not in docs/capture.md's 'What capture answers': {missing}"
