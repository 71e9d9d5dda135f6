"""Work spread over processes (training data: rooms rendered and fused in parallel).

One way of doing it for every caller: spawned processes (no fork of a process holding torch
threads or a CUDA context), one torch thread each, and tensors passed back through files
(torch's ``file_system`` sharing: with hundreds of tensors per result, passing file descriptors
runs out of them).
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

import torch

Job = TypeVar("Job")
Result = TypeVar("Result")


def _call(task: tuple) -> object:
    function, job = task
    torch.set_num_threads(1)
    torch.multiprocessing.set_sharing_strategy("file_system")
    return function(job)


def map_in_processes(function: Callable[[Job], Result], jobs: Sequence[Job], workers: int) -> Iterator[Result]:
    """``function(job)`` for every job, in order, from ``min(workers, len(jobs))`` processes;
    in this process when ``workers`` <= 1 or there is one job. ``function`` must be a
    module-level function (it is pickled by name); results are yielded as they are ready."""
    if workers <= 1 or len(jobs) <= 1:
        yield from (function(job) for job in jobs)
        return
    import multiprocessing

    torch.multiprocessing.set_sharing_strategy("file_system")
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(_call, [(function, job) for job in jobs])
