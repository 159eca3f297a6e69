"""Can this image's TensorFlow use an NVIDIA GPU? Run by rasa-gpu inside a freshly built training image, on any
machine, GPU or not (`python3 -c <this file> '<json list of sonames>'`).

It answers without a GPU: TensorFlow must be built with CUDA, and every CUDA library that TensorFlow opens at run
time must load (dlopen) in this image. The driver's own library (libcuda) is not asked: the NVIDIA Container Toolkit
brings it from the host when a container gets a GPU. The sonames come from rasa-gpu's matrix; with none given, the
CUDA runtime, cuBLAS and cuDNN found in the dynamic linker's cache are loaded instead.

Prints one line of JSON: {"ready": bool, "cuda": "11.8", "cudnn": "8", "loaded": [...], "problems": [...]}.
"""

import ctypes
import json
import subprocess
import sys


def linker_cache_names():
    """Sonames of the CUDA runtime, cuBLAS and cuDNN that the dynamic linker knows."""
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    names = set()
    for line in listing.splitlines():
        name = line.strip().split(" ", 1)[0]
        if name.startswith(("libcudart.so.", "libcublas.so.", "libcudnn.so.")):
            names.add(name)
    return sorted(names)


def main():
    wanted = json.loads(sys.argv[1]) if len(sys.argv) > 1 else []
    report = {"ready": False, "cuda": None, "cudnn": None, "loaded": [], "problems": []}
    try:
        import tensorflow as tf

        info = dict(tf.sysconfig.get_build_info())
        report["cuda"] = info.get("cuda_version")
        report["cudnn"] = info.get("cudnn_version")
        if not (info.get("is_cuda_build") and tf.test.is_built_with_cuda()):
            report["problems"].append("TensorFlow here is built without CUDA")
    except Exception as exc:  # noqa: BLE001 - whatever stops TensorFlow from loading is the answer
        report["problems"].append(f"TensorFlow did not load: {type(exc).__name__}: {exc}")
    names = wanted or linker_cache_names()
    if not names:
        report["problems"].append("no CUDA runtime, cuBLAS or cuDNN in the image")
    for name in names:
        try:
            ctypes.CDLL(name)
            report["loaded"].append(name)
        except OSError as exc:
            report["problems"].append(f"{name} does not load ({exc})")
    report["ready"] = not report["problems"]
    print(json.dumps(report))


main()
