"""Resident memory of the API's processes over time, and whether it stays flat.

A background thread reads VmRSS of `cdp serve` and every process under it (the uvicorn
supervisor, its workers) from /proc every `interval` seconds. The verdict per process
compares the median of the first and of the last window (a minute, or a fifth of a short
run) and fits least-squares slopes, over all samples and over the second half:
- flat: the last window is within GROWTH_MIB or GROWTH_SHARE of the first;
- plateau: it grew, but not over the second half (a burst raised the high-water mark,
  which CPython's allocator keeps; a leak keeps growing while the load stays the same);
- GROWING: it grew, and the second half grows at a rate that would add more than
  GROWTH_MIB over that half again.
"""

import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import PROC, _descendants, _read_procs

# Growth that counts as "not flat": more than this many MiB *and* this share of the start.
GROWTH_MIB = 8.0
GROWTH_SHARE = 0.05
DEFAULT_WINDOW_SECONDS = 60.0


def _rss_mib(pid: int) -> float | None:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "cdp serve (supervisor)"
    try:
        cmdline = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    if "spawn_main" in cmdline:
        return "uvicorn worker"
    if "resource_tracker" in cmdline:
        return "multiprocessing resource tracker"
    return Path(cmdline.split(" ", 1)[0]).name or "?"


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str
    samples: list[tuple[float, float]]  # (seconds since start, RSS MiB)

    def verdict(self, window_s: float) -> dict[str, object]:
        times = [t for t, _ in self.samples]
        values = [v for _, v in self.samples]
        end = times[-1]
        first = [v for t, v in self.samples if t <= times[0] + window_s] or values[:1]
        last = [v for t, v in self.samples if t >= end - window_s] or values[-1:]
        first_median, last_median = statistics.median(first), statistics.median(last)
        growth = last_median - first_median
        flat = not (growth > GROWTH_MIB and growth > GROWTH_SHARE * first_median)
        half = [(t, v) for t, v in self.samples if t >= times[0] + (end - times[0]) / 2]
        late_slope = slope([t for t, _ in half], [v for _, v in half])
        still_growing = late_slope * (end - times[0]) / 2 > GROWTH_MIB
        verdict = "flat" if flat else ("GROWING" if still_growing else "plateau")
        return {
            "pid": self.pid,
            "role": self.role,
            "samples": len(values),
            "first_window_median_mib": round(first_median, 1),
            "last_window_median_mib": round(last_median, 1),
            "min_mib": round(min(values), 1),
            "max_mib": round(max(values), 1),
            "growth_mib": round(growth, 1),
            "slope_mib_per_hour": round(slope(times, values) * 3600, 1),
            "second_half_slope_mib_per_hour": round(late_slope * 3600, 1),
            "verdict": verdict,
            "flat": verdict != "GROWING",
        }


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two distinct xs)."""
    if len(xs) < 2:
        return 0.0
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


class MemorySampler:
    """`with MemorySampler(api_pid, interval) as sampler: ...`, then `sampler.processes()`."""

    def __init__(self, root_pid: int, interval: float = 10.0) -> None:
        self._root = root_pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = 0.0
        self._samples: dict[int, list[tuple[float, float]]] = {}
        self._roles: dict[int, str] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "MemorySampler":
        self._started = time.monotonic()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> dict[int, float]:
        """One reading of every process of the tree (also returned: pid -> MiB)."""
        at = time.monotonic() - self._started
        pids = _descendants(_read_procs(), self._root) | {self._root}
        reading: dict[int, float] = {}
        for pid in sorted(pids):
            rss = _rss_mib(pid)
            if rss is None:
                continue
            reading[pid] = rss
            with self._lock:
                if pid not in self._roles:
                    self._roles[pid] = _role(pid, self._root)
                self._samples.setdefault(pid, []).append((at, rss))
        return reading

    def latest_total_mib(self) -> float:
        with self._lock:
            return sum(samples[-1][1] for samples in self._samples.values() if samples)

    def processes(self) -> list[ProcessMemory]:
        with self._lock:
            return [
                ProcessMemory(pid, self._roles[pid], list(samples))
                for pid, samples in sorted(self._samples.items())
            ]


def window_for(duration_s: float) -> float:
    """The first/last window compared: a minute, or a fifth of a run shorter than 5 min."""
    return min(DEFAULT_WINDOW_SECONDS, duration_s / 5)
