"""The signal rules in-process: the first signal raises, later ones never cut the cleanup short, and a signal inside
a deferred step raises only once the step is done."""

from __future__ import annotations

import os
import signal

import pytest

from rasa_gpu import signals


@pytest.fixture(autouse=True)
def _handlers():
    saved = {sig: signal.getsignal(sig) for sig in signals.HANDLED}
    signals.install()
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_the_first_signal_raises_and_later_ones_do_not():
    cleaned = False
    with pytest.raises(KeyboardInterrupt):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl+C during the cleanup
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
            cleaned = True
    assert cleaned and signals.received()


def test_a_signal_inside_a_deferred_step_raises_after_it():
    steps = []
    with pytest.raises(KeyboardInterrupt), signals.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass
        steps.append("finished")
    assert steps == ["finished"]
