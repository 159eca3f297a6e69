"""`rasa-gpu versions`: the supported Rasa releases and what goes with each."""

from __future__ import annotations

import click


@click.command()
def versions() -> None:
    """List the supported Rasa releases (Rasa Open Source and Rasa Pro) with their TensorFlow, Python, CUDA, the
    CUDA wheels from PyPI that serve them, and the GPU base image.

    \b
    Example:
      rasa-gpu versions
    """
    from rich.table import Table

    from ..compat import load_matrix
    from ._common import out

    matrix = load_matrix()
    table = Table(
        "Rasa",
        "line",
        "TensorFlow",
        "Python",
        "CUDA",
        "cuDNN",
        "min. driver",
        "CUDA wheels",
        "GPU base image",
    )
    for version in matrix.versions():
        r = matrix.releases[str(version)]
        wheels = matrix.wheels_for(r.tensorflow)
        from_pypi = f"CUDA {wheels.cuda} / cuDNN {wheels.cudnn}" if wheels else "-"
        line = "Pro" if r.pro else "Open Source"
        table.add_row(
            r.version,
            line,
            r.tensorflow,
            r.python,
            r.cuda,
            r.cudnn,
            r.min_driver,
            from_pypi,
            r.gpu_base_image,
        )
    out.print(table)
