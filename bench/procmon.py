"""Run a command to completion with a timeout and measure it: wall time, CPU time and peak
resident memory of the whole process tree.

Peak memory is the larger of (a) the highest sum of VmRSS over the process and all its
descendants, sampled from /proc every ``interval`` seconds (psutil is used instead when it is
importable), and (b) the kernel's exact ru_maxrss of the process itself from ``wait4``, which
catches a peak shorter than one sampling interval.

A sum of RSS counts a page shared by several processes of the tree once per process: the
interpreter, libcrypto and every other shared library of a tree of three Python processes
is counted three times, though the machine holds it once. The peak of the sum of PSS
(proportional set size, /proc/PID/smaps_rollup: each shared page divided among the
processes that map it) is what the tree costs the machine, and is measured beside it:
whenever the RSS sum reaches a new high, and every ``pss_every``-th sample (reading
smaps_rollup walks the page tables, about 1 ms for 200 MB).

CPU time is that of every process of the tree: the root's from ``wait4`` includes the
descendants it (or they) reaped, and the harness makes itself the child subreaper, so a
descendant orphaned before it exits (a process pool's workers, say) is reparented to the
harness, reaped there and counted too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

try:  # optional: not a dependency of the project
    import psutil
except ImportError:  # pragma: no cover - depends on the venv
    psutil = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    returncode: int
    timed_out: bool
    wall_s: float
    cpu_s: float  # user + system of the whole tree (see cpu_complete)
    cpu_complete: bool  # False: no subreaper, orphaned descendants' CPU is missing
    processes: int  # distinct processes seen in the tree
    peak_rss_mb: float
    peak_pss_mb: float | None  # None: no /proc/PID/smaps_rollup (not Linux 4.14+)
    stdout: str
    stderr: str
    system_busy_s: float  # CPU time used by everything on the machine meanwhile (/proc/stat)
    harness_cpu_s: float  # CPU time of the measuring process itself meanwhile


def system_busy_seconds() -> float:
    """Non-idle CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # guest time is already inside user
    return busy / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(*, max_wait: float, threshold: float = 0.25, window: float = 1.0) -> float:
    """Wait until the machine's CPU use over ``window`` seconds is below ``threshold`` cores
    (other people's test runs share it), at most ``max_wait`` seconds. Returns the load
    (cores in use) of the last window."""
    deadline = time.monotonic() + max_wait
    while True:
        before = system_busy_seconds()
        time.sleep(window)
        load = (system_busy_seconds() - before) / window
        if load < threshold or time.monotonic() >= deadline:
            return load


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_proc(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                kids.extend(int(k) for k in handle.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


def _rss_kb_proc(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants, now."""
    if psutil is not None:
        try:
            return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
        except psutil.Error:
            return []
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        if current not in found:
            found.append(current)
            stack.extend(_children_proc(current))
    return found


def rss_bytes(pids: Sequence[int]) -> int:
    """Sum of the resident memory of ``pids``."""
    if psutil is not None:
        total = 0
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                total += psutil.Process(pid).memory_info().rss
        return total
    return 1024 * sum(_rss_kb_proc(pid) for pid in pids)


def pss_bytes(pids: Sequence[int]) -> int | None:
    """Sum of the proportional set size of ``pids`` (None where /proc cannot tell)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
        except (PermissionError, OSError):
            return None
    return total


_PR_SET_CHILD_SUBREAPER = 36
_subreaper: bool | None = None


def become_subreaper() -> bool:
    """Make this process the child subreaper (Linux): a descendant orphaned by its parent
    is reparented here, so it can be reaped and its CPU time counted. Idempotent."""
    global _subreaper
    if _subreaper is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _subreaper = False
    return _subreaper


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reap_leftovers(group: int, pids: set[int], grace: float) -> None:
    """Wait up to ``grace`` seconds for the descendants still alive after the root exited
    (a pool shutting down), then kill what is left; reap every one that was reparented to
    us, so that its CPU time lands in our RUSAGE_CHILDREN."""
    deadline = time.monotonic() + grace
    killed = False
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        alive = {pid for pid in pids if os.path.exists(f"/proc/{pid}")}
        if not alive:
            return
        if time.monotonic() > deadline:
            if killed:
                return  # not ours to reap (never reparented here): give up
            killed = True
            deadline = time.monotonic() + 2.0
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
            for pid in alive:  # those that left the process group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def run_measured(
    argv: Sequence[str],
    *,
    timeout: float,
    log_dir: Path,
    label: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    interval: float = 0.02,
    pss_every: int = 5,
    grace: float = 10.0,
) -> Measured:
    """Run ``argv``; stdout/stderr go to ``log_dir/label.{out,err}`` and are returned too."""
    log_dir.mkdir(parents=True, exist_ok=True)
    complete_cpu = become_subreaper()
    out_path = log_dir / f"{label}.out"
    err_path = log_dir / f"{label}.err"
    seen: set[int] = set()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        busy_before, self_before = system_busy_seconds(), _self_cpu()
        children_before = _children_cpu()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,  # its own process group, so a timeout kills the tree
        )
        peak = 0
        peak_pss: int | None = 0 if os.path.exists("/proc/self/smaps_rollup") else None
        samples = 0
        timed_out = False
        status = 0
        usage = None
        deadline = start + timeout
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                pids = tree_pids(proc.pid)
                seen.update(pids)
                rss = rss_bytes(pids)
                samples += 1
                if peak_pss is not None and (rss > peak or samples % pss_every == 0):
                    pss = pss_bytes(pids)
                    peak_pss = None if pss is None else max(peak_pss, pss)
                peak = max(peak, rss)
                if time.perf_counter() > deadline:
                    timed_out = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    _, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(interval)
        except BaseException:
            with contextlib.suppress(ProcessLookupError, ChildProcessError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, ChildProcessError, PermissionError):
                os.wait4(proc.pid, 0)
            raise
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        _reap_leftovers(proc.pid, seen - {proc.pid}, grace)
        busy, self_cpu = system_busy_seconds() - busy_before, _self_cpu() - self_before
        tree_cpu = _children_cpu() - children_before
    assert usage is not None
    peak = max(peak, usage.ru_maxrss * 1024)
    return Measured(
        returncode=proc.returncode,
        timed_out=timed_out,
        wall_s=wall,
        cpu_s=tree_cpu if complete_cpu else usage.ru_utime + usage.ru_stime,
        cpu_complete=complete_cpu,
        processes=len(seen),
        peak_rss_mb=peak / 1e6,
        peak_pss_mb=None if peak_pss is None else peak_pss / 1e6,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        system_busy_s=busy,
        harness_cpu_s=self_cpu,
    )
