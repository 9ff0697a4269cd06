"""The compiled contracts that ship with the package (ABI + bytecode), so talking to a
deployment needs no Node toolchain. Rebuild with `python scripts/build_contracts.py`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


@cache
def load_artifact(name: str) -> Artifact:
    """Load a packaged artifact: `Autometa`, `OwnerProxy`, `MockV3Aggregator`, `DevToken`."""
    try:
        text = resources.files(__package__).joinpath("artifacts", f"{name}.json").read_text()
    except FileNotFoundError as exc:
        raise LookupError(f"no packaged contract artifact named {name!r}") from exc
    data = json.loads(text)
    return Artifact(name, data["abi"], data["bytecode"], data["deployedBytecode"])
