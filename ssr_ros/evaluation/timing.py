"""Throughput: frames per second of a pipeline and CDRNet's eta_3D summary.

eta_3D = FPS x mIoU x F-score (CDRNet, Zheng et al.): one number that rewards being fast,
semantically right and geometrically right at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ssr_ros.errors import InvalidInput


def best_time(fn, repeats: int = 1, warmup: int = 0) -> float:
    """Fastest of ``repeats`` timed calls of ``fn()`` (seconds), after ``warmup`` untimed ones: the
    figure least disturbed by other jobs on a shared machine."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def frames_per_second(num_frames: int, seconds: float) -> float:
    """``num_frames / seconds``; raises InvalidInput for non-positive time."""
    if seconds <= 0:
        raise InvalidInput(f"elapsed time must be positive, got {seconds} s for {num_frames} frames")
    return num_frames / seconds


def eta_3d(fps: float, miou: float, fscore: float) -> float:
    """CDRNet's eta_3D = FPS x mIoU x F-score (mIoU and F-score as fractions in [0, 1])."""
    for name, value in (("miou", miou), ("fscore", fscore)):
        if not 0.0 <= value <= 1.0:
            raise InvalidInput(f"{name}={value} must be a fraction in [0, 1]")
    if fps < 0:
        raise InvalidInput(f"fps={fps} must not be negative")
    return fps * miou * fscore


@dataclass
class FrameTimer:
    """Times the frames of a pipeline::

        timer = FrameTimer()
        for frame in frames:
            with timer:
                mapper.integrate(frame)
        print(timer.fps)
    """

    durations: list[float] = field(default_factory=list)
    _start: float | None = None

    def __enter__(self) -> "FrameTimer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.durations.append(time.perf_counter() - self._start)
        self._start = None

    @property
    def num_frames(self) -> int:
        return len(self.durations)

    @property
    def total_seconds(self) -> float:
        return float(sum(self.durations))

    @property
    def fps(self) -> float:
        """Frames per second over all timed frames."""
        return frames_per_second(self.num_frames, self.total_seconds)
