"""Check several layers at once, in worker processes (``backprop-verify --jobs N``).

Each worker is a fresh interpreter (``spawn``: forking a process that runs JAX's threads is unsafe), which
loads the layer again from the registry or from the command line's specs, so nothing needs pickling but
names and reports. A row's targets (its dtypes) go to one worker together, so they share its compiled
references; the reports come back in the order of the targets whatever the order the workers finish in.
A worker that dies (``os._exit`` in a layer, a crash in C code) fails the targets it held with a
message, and the others carry on.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from backprop.verify.registry import get_row
from backprop.verify.report import LayerReport, after_timeout


@dataclass(frozen=True)
class Job:
    """One check for a worker: the specs to load the layer from (None for a registry row), the row's
    name, the label and dtype for the report, and ``verify``'s keywords."""

    specs: tuple[str, str] | None
    name: str
    layer: str
    dtype: str
    keywords: dict[str, Any]


def stdout_to_stderr() -> None:
    """In a child: what the user's layer prints goes to stderr (the parent writes JSON to stdout)."""
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def verify_job(
    specs: tuple[str, str] | None, name: str, keywords: dict[str, Any], quiet_stdout: bool = False
) -> LayerReport:
    """In a fresh interpreter: load the layer (and row) again and verify it; ``quiet_stdout`` sends
    what the layer prints to stderr."""
    if quiet_stdout:
        stdout_to_stderr()
    from backprop.verify.loader import load_class, load_row
    from backprop.verify.search import verify

    if specs is None:
        row = get_row(name)
        return verify(row.layer, row, **keywords)
    layer, against = specs
    return verify(load_class(layer), load_row(against) if ":" in against else against, **keywords)


def _run_group(jobs: Sequence[Job], quiet_stdout: bool = False) -> list[LayerReport]:
    """One layer's jobs (its dtypes) in turn; once one timed out, the layer is not called again."""
    if quiet_stdout:
        stdout_to_stderr()
    reports: list[LayerReport] = []
    for job in jobs:
        hung = next((r for r in reports if r.timed_out), None)
        reports.append(
            after_timeout(hung, job.dtype) if hung else verify_job(job.specs, job.name, job.keywords)
        )
    return reports


def _died(job: Job, why: str) -> LayerReport:
    message = f"the worker process checking it ended ({why}); rerun with --isolate to see which call"
    return LayerReport(name=job.name, layer=job.layer, against=job.name, dtype=job.dtype, error=message)


def run_groups(
    groups: Sequence[Sequence[Job]],
    workers: int,
    done: Callable[[int, list[LayerReport]], None] | None = None,
    quiet_stdout: bool = False,
) -> list[list[LayerReport]]:
    """Each group's reports, computed in up to ``workers`` processes; ``done(i, reports)`` is called as
    group ``i`` finishes (in whatever order they finish); ``quiet_stdout`` sends what the layers print to
    stderr, as ``--json -`` needs."""
    results: list[list[LayerReport] | None] = [None] * len(groups)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(groups))),
        mp_context=context,
        initializer=_start_worker,
        initargs=(os.getpid(), quiet_stdout),
    )
    futures: dict[Future[list[LayerReport]], int] = {
        pool.submit(_run_group, list(group)): i for i, group in enumerate(groups)
    }
    broken: list[int] = []
    try:
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except BrokenProcessPool:
                broken.append(i)  # this group's worker died, or another did and took the pool down
                continue
            if done is not None:
                done(i, results[i] or [])
    except BaseException:  # Ctrl-C, or an error of the oracle's: stop the workers, not wait for them
        _terminate(pool)
        raise
    pool.shutdown()
    for i in sorted(broken):  # again, each in a child of its own, to tell which one ends its process
        results[i] = _isolated(groups[i], quiet_stdout)
        if done is not None:
            done(i, results[i] or [])
    return [r if r is not None else [] for r in results]


def _start_worker(parent: int, quiet_stdout: bool) -> None:
    """In a worker: stdout to stderr if asked, and an end to it once the parent is gone (killed outright,
    the parent could not stop its workers), so that no check runs on for nobody."""
    if quiet_stdout:
        stdout_to_stderr()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="backprop-orphan-watch", daemon=True).start()


def _terminate(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (``shutdown`` would wait for the checks they are running)."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public way before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def _isolated(group: Sequence[Job], quiet_stdout: bool) -> list[LayerReport]:
    from backprop.verify.isolate import ChildDied, run_isolated

    result = run_isolated(_run_group, list(group), quiet_stdout, fresh=True)
    if isinstance(result, ChildDied):
        return [_died(job, result.message) for job in group]
    return list(result)
