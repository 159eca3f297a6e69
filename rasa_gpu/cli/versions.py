"""`rasa-gpu versions`: the supported Rasa releases and what goes with each."""

from __future__ import annotations

import click


@click.command()
def versions() -> None:
    """List the supported Rasa releases with their TensorFlow, CUDA and base image.

    \b
    Example:
      rasa-gpu versions
    """
    from rich.table import Table

    from ..compat import load_matrix
    from ._common import out

    matrix = load_matrix()
    table = Table("Rasa", "TensorFlow", "Python", "CUDA", "cuDNN", "min. driver", "GPU base image")
    for version in matrix.versions():
        r = matrix.releases[str(version)]
        table.add_row(r.version, r.tensorflow, r.python, r.cuda, r.cudnn, r.min_driver, r.gpu_base_image)
    out.print(table)
