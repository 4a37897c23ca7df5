"""The READMEs' Python examples type-check against the SDK: every method, argument and field
they use exists (mypy strict, with placeholders for what an example takes as given)."""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT

READMES = [ROOT / "README.md", ROOT / "sdk" / "python" / "README.md"]

PRELUDE = """\
from __future__ import annotations

from typing import Any

from tether_client import Tether

GW = "http://127.0.0.1:8080"
KEY, SECRET, ENDPOINT_SECRET, secret = "ws_x", "s", "whsec_x", "whsec_x"
connection_id = instance_id = "00000000-0000-0000-0000-000000000000"
request_headers: dict[str, str] = {}
request_body = b""
tether: Tether


def store_secret(endpoint_id: str, secret: str) -> None: ...
def handle(*args: Any) -> None: ...
def seen_before(webhook_id: str) -> bool: ...
"""


def examples(readme: Path) -> list[str]:
    """Return the Python blocks of ``readme`` that use the SDK."""
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.DOTALL)
    return [b for b in blocks if "tether_client" in b or "Tether" in b]


async def test_python_sdk_readme_examples_type_check(tmp_path: Path) -> None:
    module = [PRELUDE]
    for readme in READMES:
        found = examples(readme)
        assert found, f"{readme} shows no SDK example"
        for n, block in enumerate(found):
            name = f"{readme.parent.name}_{n}".replace("-", "_").replace(".", "_")
            module.append(f"\n\ndef example_{name}() -> None:\n{textwrap.indent(block, '    ')}")
    path = tmp_path / "readme_examples.py"
    path.write_text("".join(module))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / "mypy-cache"),
        "--disable-error-code",
        "empty-body",
        str(path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode() + "\n" + path.read_text()
