#!/usr/bin/env python3
"""Compile the contracts with the pinned solc (through forge + solcjs) and write the ABI and
bytecode artifacts that ship inside the Python package, so a pip user needs no Node.

    python scripts/build_contracts.py           # rebuild artifacts
    python scripts/build_contracts.py --check   # fail if committed artifacts are stale
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "contracts"
FORGE = ROOT / "node_modules" / ".bin" / "forge"
ARTIFACTS = ROOT / "src" / "autometa" / "contracts" / "artifacts"
# contract name -> source file (under contracts/out)
SHIPPED = {
    "Autometa": "Autometa.sol",
    "TriggerSpecs": "TriggerSpecs.sol",  # deployed by Autometa's constructor (`triggerSpecs()`)
    "OwnerProxy": "OwnerProxy.sol",
    "MockV3Aggregator": "MockV3Aggregator.sol",
    "DevToken": "DevContracts.sol",
    "DevMulticall": "DevContracts.sol",
    "DevGasBurner": "DevContracts.sol",
    "NoL1FeeModule": "ChainModules.sol",
    "OptimismModule": "ChainModules.sol",
    "ArbitrumModule": "ChainModules.sol",
    "DevGasPriceOracle": "L2StandIns.sol",
    "DevArbGasInfo": "L2StandIns.sol",
}


# Contracts whose functions another one runs through its fallback (delegatecall): their ABI
# entries are part of the caller's ABI, so clients call them on the deployed address.
FALLBACK_MODULES = {"Autometa": ("AutometaAdmin", "AutometaAdmin.sol")}


def _abi(name: str, source: str) -> list[dict[str, object]]:
    abi: list[dict[str, object]] = json.loads((CONTRACTS / "out" / source / f"{name}.json").read_text())["abi"]
    if name in FALLBACK_MODULES:
        seen = {json.dumps(entry, sort_keys=True) for entry in abi}
        names = {(e.get("type"), e.get("name")) for e in abi}
        for entry in _abi(*FALLBACK_MODULES[name]):
            if entry["type"] == "constructor" or json.dumps(entry, sort_keys=True) in seen:
                continue
            if (entry.get("type"), entry.get("name")) in names and entry["type"] == "function":
                raise SystemExit(f"{name} and its fallback module both define {entry['name']}")
            abi.append(entry)
    return abi


def render(name: str, source: str) -> str:
    built = json.loads((CONTRACTS / "out" / source / f"{name}.json").read_text())
    artifact = {
        "contractName": name,
        "abi": _abi(name, source),
        "bytecode": built["bytecode"]["object"],
        "deployedBytecode": built["deployedBytecode"]["object"],
    }
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    if not FORGE.exists():
        print(f"forge not found at {FORGE}: run `npm ci` in {ROOT} first", file=sys.stderr)
        return 2
    print("compiling contracts (forge + solcjs, offline)…", file=sys.stderr, flush=True)
    subprocess.run([str(FORGE), "build", "--skip", "test", "--skip", "script"], cwd=CONTRACTS, check=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, source in SHIPPED.items():
        text = render(name, source)
        path = ARTIFACTS / f"{name}.json"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    if stale:
        print(
            "committed contract artifacts differ from the sources: "
            + ", ".join(map(str, stale))
            + "\nrun `python scripts/build_contracts.py` and commit the result",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
