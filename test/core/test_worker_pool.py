"""Work spread over processes: results in order, the same as in-process, tensors passed back."""

import os

import torch

from ssr_ros.worker_pool import map_in_processes


def _square_with_pid(job: int) -> tuple[torch.Tensor, int, int]:
    return torch.full((3, 3), float(job * job)), os.getpid(), torch.get_num_threads()


def test_jobs_run_in_other_processes_in_order_with_one_thread_and_equal_the_serial_results():
    jobs = [3, 1, 4, 1, 5]
    serial = list(map_in_processes(_square_with_pid, jobs, workers=1))
    parallel = list(map_in_processes(_square_with_pid, jobs, workers=2))
    assert [r[0][0, 0].item() for r in parallel] == [9.0, 1.0, 16.0, 1.0, 25.0]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(serial, parallel))
    assert {r[1] for r in serial} == {os.getpid()}
    assert os.getpid() not in {r[1] for r in parallel} and len({r[1] for r in parallel}) <= 2
    assert {r[2] for r in parallel} == {1}


def test_one_job_or_one_worker_stays_in_this_process():
    assert [r[1] for r in map_in_processes(_square_with_pid, [2], workers=8)] == [os.getpid()]
    assert list(map_in_processes(_square_with_pid, [], workers=4)) == []
