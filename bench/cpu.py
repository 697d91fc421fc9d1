"""Where the CPU went during a measurement: the API, PostgreSQL, the load generator.

A background thread reads /proc twice a second and adds up each process's CPU ticks.
Approximate: a process that exits loses at most its last half second (pgbench's
backends end with it), and `postgres` counts every backend of the server, also ones
that are not ours. Good enough to see which side saturates the cores.
"""

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class CpuUsage:
    """Busy share of the whole machine (0..100) and cores used by each group."""

    machine_busy_pct: float
    api_cores: float
    postgres_cores: float
    load_cores: float

    def describe(self) -> str:
        return (
            f"cpu busy {self.machine_busy_pct:.0f}%: api {self.api_cores:.2f}, "
            f"postgres {self.postgres_cores:.2f}, load generator {self.load_cores:.2f} cores"
        )


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    comm: str
    ticks: int
    start: int


def _read_procs() -> dict[tuple[int, int], _Proc]:
    procs: dict[tuple[int, int], _Proc] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        head, _, tail = raw.rpartition(")")
        comm = head.partition("(")[2]
        fields = tail.split()
        # fields[0] is the state: ppid, utime, stime, starttime are stat fields 4, 14, 15, 22.
        proc = _Proc(
            pid=int(entry.name),
            ppid=int(fields[1]),
            comm=comm,
            ticks=int(fields[11]) + int(fields[12]),
            start=int(fields[19]),
        )
        procs[(proc.pid, proc.start)] = proc
    return procs


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies summed over all cores."""
    values = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def _descendants(procs: dict[tuple[int, int], _Proc], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


class CpuSampler:
    """`with CpuSampler(api_pid) as sampler: ...` then `sampler.usage`."""

    def __init__(self, api_pid: int | None, interval: float = 0.5) -> None:
        self._api_pid = api_pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._ticks = {"api": 0, "postgres": 0, "load": 0}
        self._seen: dict[tuple[int, int], int] = {}
        self._start_machine = (0, 0)
        self._end_machine = (0, 0)
        self._started_at = 0.0
        self._ended_at = 0.0
        self.usage: CpuUsage | None = None

    def __enter__(self) -> "CpuSampler":
        self._started_at = time.monotonic()
        self._start_machine = _machine_ticks()
        self._seen = {key: proc.ticks for key, proc in _read_procs().items()}
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self._ended_at = time.monotonic()
        self._end_machine = _machine_ticks()
        elapsed = max(self._ended_at - self._started_at, 1e-6)
        busy = self._end_machine[0] - self._start_machine[0]
        total = max(self._end_machine[1] - self._start_machine[1], 1)
        self.usage = CpuUsage(
            machine_busy_pct=100.0 * busy / total,
            api_cores=self._ticks["api"] / _TICKS_PER_SECOND / elapsed,
            postgres_cores=self._ticks["postgres"] / _TICKS_PER_SECOND / elapsed,
            load_cores=self._ticks["load"] / _TICKS_PER_SECOND / elapsed,
        )

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        procs = _read_procs()
        api = _descendants(procs, self._api_pid) if self._api_pid else set()
        if self._api_pid:
            api.add(self._api_pid)
        ours = _descendants(procs, os.getpid()) - api
        for key, proc in procs.items():
            delta = proc.ticks - self._seen.get(key, 0)
            self._seen[key] = proc.ticks
            if delta <= 0:
                continue
            if proc.pid in api:
                self._ticks["api"] += delta
            elif proc.comm == "postgres":
                self._ticks["postgres"] += delta
            elif proc.pid in ours:
                self._ticks["load"] += delta


def wait_until_idle(
    root_pid: int, *, below_cores: float = 0.1, interval: float = 0.5, timeout: float = 30.0
) -> float:
    """Wait until the process tree of `root_pid` uses less than `below_cores` over one
    `interval` (or `timeout` passed); returns the seconds waited.

    After wrk stops, the API still works off the requests wrk had in flight (a batch takes
    a second under load): without this the next measurement would share the CPU with them.
    """
    started = time.monotonic()

    def tree_ticks() -> int:
        procs = _read_procs()
        pids = _descendants(procs, root_pid) | {root_pid}
        return sum(proc.ticks for proc in procs.values() if proc.pid in pids)

    before = tree_ticks()
    while time.monotonic() - started < timeout:
        time.sleep(interval)
        after = tree_ticks()
        if (after - before) / _TICKS_PER_SECOND / interval < below_cores:
            break
        before = after
    return time.monotonic() - started
