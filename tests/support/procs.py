"""A process's figures from Linux /proc, for the benches and the process tests: its resident and
proportional memory, and its children."""

from __future__ import annotations

from pathlib import Path


def _status_kb(pid: int | str, field: str, path: str = "status") -> float:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0.0


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory (VmRSS): shared pages count in full for every process that maps them."""
    return _status_kb(pid, "VmRSS:") / 1024


def pss_mb(pid: int | str = "self") -> float:
    """Proportional set size (/proc/PID/smaps_rollup): each shared page split among its sharers,
    so a sum over processes is the memory they occupy together."""
    return _status_kb(pid, "Pss:", "smaps_rollup") / 1024


def children(pid: int) -> list[int]:
    """The live child processes of `pid`, by the parent field of each /proc/N/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)
