"""A warm trainer for `rasa-gpu watch`: one training container per watch, in which Rasa trains each retraining in
the same Python process, so that a retraining skips the container's start and the imports of TensorFlow and Rasa
(5 s of a 14 s fine-tune of example_bot on 2 CPU cores).

The container runs the image's entry script in serve mode (RASA_GPU_SERVE=1): each training is one JSON line on its
stdin, {"args": [...], "env": {...}}, and the entry prints `RASA_GPU_DONE <status>` after it (and once when it is
ready). It is tied like any training container (its stdin closing ends it at once), it is replaced when a training
needs another image, GPU request or limits, and it ends after a failed training, so that a failure never leaves a
half-broken Python process for the next one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from . import gpu as gpu_rules
from . import progress
from .entry_contract import DONE_MARKER
from .events import EventSink

if TYPE_CHECKING:
    from .engine import ContainerSpec, Engine, RunningContainer

_DONE = re.compile(rf"{DONE_MARKER} (-?\d+)")


class WarmTrainer:
    """Holds at most one serving container; `close()` (or leaving the `with` block) stops and removes it."""

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self._running: RunningContainer | None = None
        self._lines: Iterator[str] | None = None
        self._key: Any = None
        self._gpu: gpu_rules.GpuRequest | None = None
        self._granted = False

    def __enter__(self) -> WarmTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        stack, self._stack = self._stack, None
        self._running, self._lines, self._key, self._gpu = None, None, None, None
        if stack is not None:
            stack.close()

    def run(
        self,
        engine: Engine,
        key: Any,
        build: Callable[[gpu_rules.GpuRequest], ContainerSpec],
        gpu: gpu_rules.GpuRequest,
        args: list[str],
        environment: dict[str, str],
        on_event: EventSink,
    ) -> tuple[Iterator[str], Callable[[], int], bool, bool]:
        """Send one training (Rasa's `args`, its own `environment`) to the serving container, started first (from
        `build`, with the GPU as `gpu` says) when there is none for `key` and `gpu`. Returns its output lines, a
        function that gives its exit status once they are read, whether the container has the GPU, and whether it
        was already running (warm)."""
        # A container that got no GPU also serves a training that wants none (watch turns `auto` into `off` after
        # its first training on the CPU).
        fits = key == self._key and (gpu == self._gpu or (not gpu.wanted and not self._granted))
        if not fits:
            self.close()
        fresh = self._stack is None
        if fresh:
            stack = ExitStack()
            try:
                running, granted = stack.enter_context(
                    gpu_rules.started(engine, build, gpu, "train", on_event)
                )
            except BaseException:
                stack.close()
                raise
            self._stack, self._running, self._key, self._gpu, self._granted = (
                stack,
                running,
                key,
                gpu,
                granted,
            )
            self._lines = progress.split_stream_lines(running.frames())
        assert self._running is not None and self._lines is not None
        running, lines = self._running, self._lines
        request = {"args": args, "env": environment}
        running.send((json.dumps(request) + "\n").encode())
        status: list[int] = []

        def output() -> Iterator[str]:
            ready = not fresh  # a fresh container says it is ready first
            for line in lines:
                done = _DONE.fullmatch(line.strip())
                if done is None:
                    yield line
                elif not ready:
                    ready = True
                else:
                    status.append(int(done.group(1)))
                    return

        def wait() -> int:
            if status == [0]:
                return 0
            # A failed training ends the serving process after its marker; without a marker the container is gone.
            code = status[0] if status else running.wait()
            self.close()
            return code

        return output(), wait, self._granted, not fresh
