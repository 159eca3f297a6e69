"""What the user reads: Rasa's lines as Rasa printed them, and the cause of a failure picked out of its output."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from rasa_gpu import cli
from rasa_gpu.progress import ProgressParser

REPO = Path(__file__).resolve().parent.parent


def test_rasa_lines_pass_through_verbatim_without_colour_codes_on_a_pipe():
    line = "/usr/lib/python3/dist-packages/rasa/shared/utils/io.py:100: UserWarning: [bold]x[/bold] \x1b[31mred\x1b[0m"
    with cli.err.capture() as captured:
        cli.err.print(cli.verbatim(line))
    assert captured.get().rstrip("\n") == line.replace("\x1b[31m", "").replace("\x1b[0m", "")


def test_the_cause_is_the_root_of_a_chain_of_wrapped_exceptions():
    parser = ProgressParser()
    for line in [
        "Traceback (most recent call last):",
        '  File "/x/caching.py", line 10, in cache_output',
        "OSError: [Errno 28] No space left on device",
        "",
        "The above exception was the direct cause of the following exception:",
        "Traceback (most recent call last):",
        "rasa.engine.exceptions.GraphComponentException: Error running graph component for node train_DIET.",
    ]:
        parser.feed(line)
    assert parser.cause == "OSError: [Errno 28] No space left on device"
    assert parser.disk_full == "No space left on device"


def test_the_cause_is_rasas_own_error_line_without_its_colour():
    parser = ProgressParser()
    for line in [
        "/usr/local/lib/python3.9/dist-packages/google/auth/__init__.py:54: FutureWarning: Python 3.9 is old",
        "  warnings.warn(eol_message.format('3.9'), FutureWarning)",
        "\x1b[91mInvalidConfigException: Can't load class for name 'Foo'.\x1b[0m",
    ]:
        parser.feed(line)
    assert parser.cause == "InvalidConfigException: Can't load class for name 'Foo'."
    assert not parser.disk_full
    assert all("\x1b" not in line for line in parser.error_lines())


def test_rasa_pros_logged_error_and_the_sentence_after_it_are_the_cause():
    """What Rasa Pro 3.21 printed here with a license that is not one (no traceback, a structlog line, a sentence)."""
    parser = ProgressParser()
    lines = [
        "2026-11-23 05:05:14 [info     ] rasa.telemetry.disabled",
        "2026-11-23 05:05:14 [error    ] license.validation.error       "
        "error=LicenseEncodingException('Could not decode license as JWT.')",
        "Failed to validate Rasa license which was read from environment variable `RASA_PRO_LICENSE`. Please ensure "
        "`RASA_PRO_LICENSE` is set to a valid license string. ",
    ]
    for line in lines:
        parser.feed(line)
    told = (
        "Failed to validate Rasa license which was read from environment variable `RASA_PRO_LICENSE`. Please ensure "
        "`RASA_PRO_LICENSE` is set to a valid license string. (license.validation.error "
        "error=LicenseEncodingException('Could not decode license as JWT.'))"
    )
    assert parser.cause == told
    swapped = ProgressParser()  # stdout and stderr arrive in either order: the sentence first, the error last
    for line in lines[:1] + lines[2:] + lines[1:2]:
        swapped.feed(line)
    assert swapped.cause == told
    only_logged = ProgressParser()
    only_logged.feed("2026-11-23 05:05:56 [error    ] license.not_found.error")
    only_logged.feed("2026-11-23 05:05:56 [info     ] something.else")
    assert only_logged.cause == "license.not_found.error"


def test_no_cause_in_plain_log_output():
    parser = ProgressParser()
    for line in [
        "2026-11-22 INFO rasa.validator - No story structure conflicts found.",
        "Your Rasa model is trained",
    ]:
        parser.feed(line)
    assert parser.cause is None


def _entry_script():
    spec = importlib.util.spec_from_file_location("rasa_gpu_entry", REPO / "docker" / "rasa-gpu-entry.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_entry_script_adds_the_token_inside_its_process_and_drops_it_from_the_environment(monkeypatch):
    entry = _entry_script()
    monkeypatch.setenv("RASA_AUTH_TOKEN", "s3cret-token")
    assert entry.rasa_arguments(["run", "--enable-api"]) == [
        "run",
        "--enable-api",
        "--auth-token",
        "s3cret-token",
    ]
    assert "RASA_AUTH_TOKEN" not in os.environ  # not inherited by anything Rasa starts
    monkeypatch.setenv("RASA_AUTH_TOKEN", "s3cret-token")
    assert entry.rasa_arguments(["train", "--out", "x"]) == ["train", "--out", "x"]
