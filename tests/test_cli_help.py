"""Every command explains itself with an example; the wheel carries its templates."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from rasa_gpu import templates
from rasa_gpu.cli import cli


@pytest.mark.parametrize("name", cli.list_commands(click.Context(cli)))  # commands load lazily
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and f"rasa-gpu {name}" in result.output


def test_templates_are_readable():
    assert "FROM @base_image AS rasa" in templates.read_text("docker", "Dockerfile.tmpl")
    assert b"RASA_GPU_DEVICES" in templates.read_bytes("docker", "rasa-gpu-entry.py")
