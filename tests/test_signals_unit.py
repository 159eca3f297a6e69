"""The signal rules in-process: the first signal raises, later ones never cut the cleanup short, and a signal inside
a deferred step or an import raises only once the step or the import is done."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time

import pytest

from rasa_gpu import signals


@pytest.fixture(autouse=True)
def _handlers():
    saved = {sig: signal.getsignal(sig) for sig in (*signals.HANDLED, signal.SIGALRM)}
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


def test_a_signal_inside_an_import_raises_after_it(tmp_path, monkeypatch):
    """An import cut in two leaves a half-made package behind (`module 'docker' has no attribute 'errors'` in the
    cleanup that needs it): the signal waits for the import."""
    package = tmp_path / "slowpkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "deadline = time.monotonic() + 0.3\n"
        "while time.monotonic() < deadline:\n"
        "    pass\n"
        "from . import part\n"
    )
    (package / "part.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        importlib.import_module("slowpkg")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the signal raises here, once the import is done
            pass
    assert sys.modules["slowpkg"].part.VALUE == 1
    del sys.modules["slowpkg"], sys.modules["slowpkg.part"]
