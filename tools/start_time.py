"""How long ``make run`` takes to be ready (issue 17): starts ``python -m local`` on free ports N
times, each until its banner is out, then stops it with SIGINT.

Per run: the wall time until the banner, the CPU seconds the stack used until then (``python -m
local`` and the servers it started: Java for DynamoDB Local, Radicale), the load average, and the
banner's own step timing. The CPU figure hardly depends on what else the machine runs; the wall time
does. ``chrt -f 1 python -m tools.start_time`` gives the stack the CPU first (Linux, root), the
nearest a shared machine gets to an idle one.

    python -m tools.start_time [N]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local.config import stack_ports

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def _stat() -> dict[int, list[str]]:
    """Every process's /proc/<pid>/stat fields after the command name (Linux)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except OSError:
                continue
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid``'s session and of the sessions of its children (the servers run in
    sessions of their own)."""
    stat = _stat()
    sessions = {pid} | {p for p, fields in stat.items() if int(fields[1]) == pid}  # ppid
    ticks = sum(int(f[11]) + int(f[12]) for f in stat.values() if int(f[3]) in sessions)
    return ticks / TICK


def measure_once() -> str:
    tmp = Path(tempfile.mkdtemp(prefix="calsync-start-time-"))
    env = {**os.environ, "CALSYNC_STATE_DIR": str(tmp / "state"), "PYTHONUNBUFFERED": "1"}
    env.update({var: str(port) for var, port in stack_ports().items()})
    out, err = tmp / "stdout", tmp / "stderr"
    load = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env=env,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
        start_new_session=True,
    )
    try:
        while "TOKEN=" not in out.read_text() and proc.poll() is None and time.monotonic() - started < 180:
            time.sleep(0.05)
        wall = time.monotonic() - started
        cpu = _cpu_seconds(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    ready = [line.strip() for line in out.read_text().splitlines() if "after start" in line]
    what = ready[0] if ready else "no banner: " + err.read_text()[-300:]
    return f"banner after {wall:.1f} s, CPU {cpu:.1f} s, load {load:.1f}; {what}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    runs = int(args[0]) if args else 3
    for n in range(1, runs + 1):
        print(f"run {n}: {measure_once()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
