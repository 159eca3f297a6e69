"""tools/gen_compat.py (offline: its pure parts on small inputs) and the compat.json it generated.

No test here touches the network: HTTP is replaced by in-memory answers where a test needs it.
"""

from __future__ import annotations

import email.parser
import importlib.util
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
COMPAT_JSON = REPO / "rasa_gpu" / "data" / "compat.json"


def _load_tool():
    spec = importlib.util.spec_from_file_location("gen_compat", REPO / "tools" / "gen_compat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_compat"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


g = _load_tool()


def _metadata(text: str):
    return email.parser.Parser().parsestr(text)


def _dist(filename: str, size: int = 1000, yanked: bool = False, url: str | None = None):
    return g.DistFile(
        filename=filename,
        url=url or f"https://files.example/{filename}",
        sha256=None,
        size=size,
        yanked=yanked,
        metadata_sha256=None,
        has_metadata=False,
    )


@pytest.fixture(scope="module")
def compat() -> dict:
    return json.loads(COMPAT_JSON.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------- data files


def test_cuda_components_file_has_the_cuda_11_8_ga_versions():
    components = {c.package: c for c in g.load_cuda_components(g.CUDA_COMPONENTS_FILE)["11.8"]}
    assert components["nvidia-cuda-runtime-cu11"].version == "11.8.89"
    assert components["nvidia-cublas-cu11"].version == "11.11.3.6"
    assert components["nvidia-cublas-cu11"].libraries == ("cublas", "cublasLt")
    assert components["nvidia-cuda-cupti-cu11"].version == "11.8.87"
    assert components["nvidia-cusparse-cu11"].version == "11.7.5.86"


def test_cuda_components_refuses_a_second_row_for_a_package(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "# comment\ntoolkit,component,version,package,libraries\n"
        "11.8,libcublas,11.11.3.6,nvidia-cublas-cu11,cublas\n"
        "11.8,libcublas,11.11.3.7,nvidia_cublas_cu11,cublas\n"
    )
    with pytest.raises(g.GenError, match="second row"):
        g.load_cuda_components(path)


def test_dso_libraries_file_per_tensorflow_version():
    rows = g.load_dso_libraries(g.DSO_LIBRARIES_FILE)

    def libs(tf: str) -> dict[str, tuple[str, str]]:
        return {r.library: (r.macro, r.need) for r in g.dso_rows_for(rows, Version(tf))}

    old, v212, v214, v221 = libs("2.11.1"), libs("2.12.0"), libs("2.14.1"), libs("2.21.0")
    assert old["cupti"] == ("TF_CUDA_VERSION", "optional")
    assert v212["cupti"] == ("TF_CUPTI_VERSION", "optional")
    assert old["curand"][1] == v212["curand"][1] == "required"
    assert "curand" not in v214 and "nccl" not in v214
    assert v221["nccl"] == ("TF_NCCL_VERSION", "optional")
    for table in (old, v212, v214, v221):
        assert {"cudart", "cublas", "cublasLt", "cufft", "cusolver", "cusparse", "cudnn"} <= {
            lib for lib, (_, need) in table.items() if need == "required"
        }
        assert table["cuda"][1] == "excluded" and table["nvinfer"][1] == "excluded"
    with pytest.raises(g.GenError, match="no rows"):
        g.dso_rows_for(rows, Version("2.3.4"))


def test_dso_library_ranges_compare_major_minor():
    row = g.DsoLibrary(
        Version("2.5"), Version("2.12"), "GetCudnnDsoHandle", "cudnn", "TF_CUDNN_VERSION", "required", ""
    )
    assert row.applies(Version("2.5.3")) and row.applies(Version("2.11.1"))
    assert not row.applies(Version("2.12.0")) and not row.applies(Version("2.4.4"))


# ---------------------------------------------------------------------------------------------- TF build headers

CUDA_CONFIG_H = """
#ifndef CUDA_CUDA_CONFIG_H_
#define CUDA_CUDA_CONFIG_H_
#define TF_CUDA_VERSION "11.8"
#define TF_CUDART_VERSION "11.0"
#define TF_CUPTI_VERSION "11.8"
#define TF_CUBLAS_VERSION "11"
#define TF_CUSOLVER_VERSION "11"
#define TF_CURAND_VERSION "10"
#define TF_CUFFT_VERSION "10"
#define TF_CUSPARSE_VERSION "11"
#define TF_CUDNN_VERSION "8"
#define TF_CUDA_COMPUTE_CAPABILITIES 35, 50, 60, 70, 75, 80
#endif  // CUDA_CUDA_CONFIG_H_
"""

DSO_LOADER_H = """
namespace DsoLoader {
StatusOr<void*> GetCudaDriverDsoHandle();
StatusOr<void*> GetCudaRuntimeDsoHandle();
StatusOr<void*> GetCublasDsoHandle();
StatusOr<void*> GetCublasLtDsoHandle();
StatusOr<void*> GetCufftDsoHandle();
StatusOr<void*> GetCurandDsoHandle();
StatusOr<void*> GetCusolverDsoHandle();
StatusOr<void*> GetCusparseDsoHandle();
StatusOr<void*> GetCuptiDsoHandle();
StatusOr<void*> GetCudnnDsoHandle();
StatusOr<void*> GetNvInferDsoHandle();
StatusOr<void*> GetNvInferPluginDsoHandle();
StatusOr<void*> GetRocblasDsoHandle();
StatusOr<void*> GetHipDsoHandle();
Status MaybeTryDlopenGPULibraries();
}  // namespace DsoLoader
using tsl::internal::DsoLoader::GetCudaDriverDsoHandle;
"""


def test_header_parsing():
    macros = g.parse_header_macros(CUDA_CONFIG_H)
    assert macros["TF_CUDART_VERSION"] == "11.0" and macros["TF_CUDNN_VERSION"] == "8"
    assert "TF_CUDA_COMPUTE_CAPABILITIES" not in macros  # not a string
    loaders = g.dso_loader_functions(DSO_LOADER_H)
    assert "GetCublasLtDsoHandle" in loaders and "GetHipDsoHandle" in loaders
    assert "MaybeTryDlopenGPULibraries" not in loaders
    assert g.TF_CONFIG_HEADER.match("tensorflow/include/third_party/gpus/cuda/cuda_config.h")
    assert g.TF_CONFIG_HEADER.match("tensorflow/include/external/nccl_archive/nccl_config.h")
    assert not g.TF_CONFIG_HEADER.match("tensorflow/include/external/com_google_absl/absl/base/config.h")
    assert g.TF_DSO_LOADER_HEADER.match("tensorflow/include/xla/tsl/platform/default/dso_loader.h")


def test_requested_sonames_come_from_the_build_macros():
    rows = g.dso_rows_for(g.load_dso_libraries(g.DSO_LIBRARIES_FILE), Version("2.12.0"))
    g.check_dso_loaders(rows, g.dso_loader_functions(DSO_LOADER_H), "tf")
    requests = g.requested_sonames(rows, g.parse_header_macros(CUDA_CONFIG_H), "tf")
    sonames = {r.soname: r.library.need for r in requests}
    assert sonames == {
        "libcudart.so.11.0": "required",
        "libcublas.so.11": "required",
        "libcublasLt.so.11": "required",
        "libcufft.so.10": "required",
        "libcurand.so.10": "required",
        "libcusolver.so.11": "required",
        "libcusparse.so.11": "required",
        "libcudnn.so.8": "required",
        "libcupti.so.11.8": "optional",
    }
    macros = g.parse_header_macros(CUDA_CONFIG_H)
    del macros["TF_CUDNN_VERSION"]
    with pytest.raises(g.GenError, match="TF_CUDNN_VERSION"):
        g.requested_sonames(rows, macros, "tf")


def test_loader_check_catches_both_directions():
    rows = g.dso_rows_for(g.load_dso_libraries(g.DSO_LIBRARIES_FILE), Version("2.12.0"))
    declared = g.dso_loader_functions(DSO_LOADER_H)
    with pytest.raises(g.GenError, match="does not declare"):
        g.check_dso_loaders(rows, declared - {"GetCurandDsoHandle"}, "tf")
    with pytest.raises(g.GenError, match="GetNcclDsoHandle"):
        g.check_dso_loaders(rows, declared | {"GetNcclDsoHandle"}, "tf")


# ---------------------------------------------------------------------------------------------- RECORD

RECORD = """nvidia/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0
nvidia/cublas/include/cublas.h,sha256=x,41
nvidia/cublas/lib/libcublas.so.11,sha256=y,150000000
nvidia/cublas/lib/libcublasLt.so.11,sha256=z,330000000
nvidia/cublas/lib/libnvblas.so.11,sha256=w,700000
nvidia/cuda_cupti/lib/libcupti.so.11.8,sha256=v,7000
nvidia/cuda_cupti/lib/libnvperf_host.so,sha256=u,1
"nvidia/odd,name/libodd.so.1",sha256=t,1
nvidia_cublas_cu11-11.11.3.6.dist-info/RECORD,,
"""


def test_record_sonames():
    assert g.record_sonames(RECORD) == {
        "libcublas.so.11",
        "libcublasLt.so.11",
        "libnvblas.so.11",
        "libcupti.so.11.8",
        "libnvperf_host.so",
        "libodd.so.1",
    }


class _RangeServer:
    """Stands in for http_get: serves byte ranges of in-memory files and counts what it sends."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.sent = 0
        self.full_gets = 0

    def __call__(self, url, headers=None, *, missing_ok=False):
        body = self.files.get(url)
        if body is None:
            if missing_ok:
                return 404, {}, b""
            raise g.GenError(f"GET {url} failed: HTTP 404")
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", (headers or {}).get("Range", ""))
        if match is None:
            self.full_gets += 1
            self.sent += len(body)
            return 200, {}, body
        part = body[int(match.group(1)) : int(match.group(2)) + 1]
        self.sent += len(part)
        return 206, {}, part


def _wheel_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
    return buffer.getvalue()


def test_record_is_read_by_ranges_without_the_big_members(monkeypatch, tmp_path):
    big = bytes(range(256)) * (8 * 1024 * 4)  # 8 MiB of library
    wheel = _wheel_bytes(
        {
            "nvidia/cublas/lib/libcublas.so.11": big,
            "nvidia_cublas_cu11-11.11.3.6.dist-info/METADATA": b"Metadata-Version: 2.1\nName: nvidia-cublas-cu11\n",
            "nvidia_cublas_cu11-11.11.3.6.dist-info/RECORD": RECORD.encode(),
        }
    )
    dist = _dist("nvidia_cublas_cu11-11.11.3.6-py3-none-manylinux1_x86_64.whl", size=len(wheel))
    server = _RangeServer({dist.url: wheel})
    monkeypatch.setattr(g, "http_get", server)
    reader = g.MetadataReader(tmp_path)
    assert "libcublasLt.so.11" in g.record_sonames(reader.record(dist))
    assert server.full_gets == 0 and server.sent < len(big) / 8
    sent = server.sent
    assert reader.record(dist) == RECORD  # second time from the cache
    assert server.sent == sent


def test_metadata_falls_back_to_ranges_when_the_pep658_file_is_missing(monkeypatch, tmp_path):
    wheel = _wheel_bytes({"x-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: x\nVersion: 1.0\n"})
    dist = g.DistFile(
        "x-1.0-py3-none-any.whl", "https://files.example/x.whl", None, len(wheel), False, "ab", True
    )
    monkeypatch.setattr(g, "http_get", _RangeServer({dist.url: wheel}))
    assert g.MetadataReader(tmp_path).read(dist)["Name"] == "x"


def test_index_falls_back_to_the_json_api(monkeypatch):
    api = {
        "releases": {
            "1.0": [
                {
                    "filename": "demo-1.0-py3-none-any.whl",
                    "url": "../../packages/packages/ab/cd/demo-1.0-py3-none-any.whl",
                    "digests": {"sha256": "00"},
                    "size": 12,
                    "yanked": False,
                    "core-metadata": {"sha256": "11"},
                }
            ],
            "2.0rc1": [],
        }
    }

    def fake_get(url, headers=None, *, missing_ok=False):
        if url.startswith("https://pypi.org/simple/"):
            return 200, {"content-type": "text/html"}, b"<html></html>"
        assert url == "https://pypi.org/pypi/demo/json"
        return 200, {"content-type": "application/json"}, json.dumps(api).encode()

    monkeypatch.setattr(g, "http_get", fake_get)
    index = g.fetch_index("demo")
    (dist,) = index[Version("1.0")]
    assert dist.url == "https://pypi.org/packages/packages/ab/cd/demo-1.0-py3-none-any.whl"
    assert (dist.sha256, dist.size, dist.has_metadata, dist.metadata_sha256) == ("00", 12, True, "11")


# ---------------------------------------------------------------------------------------------- and-cuda

TF_METADATA = """Metadata-Version: 2.1
Name: tensorflow
Version: 2.21.0
Requires-Python: >=3.10
Provides-Extra: and-cuda
Requires-Dist: numpy>=1.26.0
Requires-Dist: nvidia-cublas-cu12==12.5.3.2; extra == "and-cuda"
Requires-Dist: nvidia-cuda-runtime-cu12<13.0,>=12.5.82; extra == "and-cuda"
Requires-Dist: nvidia-cudnn-cu12 (==9.3.0.75) ; extra == 'and-cuda'
Requires-Dist: tensorrt (==8.5.3.1) ; extra == 'and-cuda'
Requires-Dist: nvidia-nccl-cu12<3.0,>=2.27.7; extra == "and-cuda" and sys_platform == "win32"
"""


def test_and_cuda_extraction_and_pins():
    found = g.and_cuda_requirements(_metadata(TF_METADATA), "3.12", "tf")
    assert set(found) == {"nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12", "tensorrt"}
    assert g.pin_version("nvidia-cublas-cu12", found["nvidia-cublas-cu12"], "tf") == ("12.5.3.2", True)
    assert g.pin_version("nvidia-cudnn-cu12", found["nvidia-cudnn-cu12"], "tf") == ("9.3.0.75", True)
    # a range gives its lower bound: the version TensorFlow was built with
    assert g.pin_version("rt", found["nvidia-cuda-runtime-cu12"], "tf") == ("12.5.82", False)
    for spec in ("<13.0", ">=12,!=12.4", "==12.*", ">=12,>=12.1"):
        with pytest.raises(g.GenError, match="cannot take one version"):
            g.pin_version("x", SpecifierSet(spec), "tf")


def test_wheel_choice_and_cudnn_choice():
    files = [
        _dist("nvidia_x-1-py3-none-manylinux1_x86_64.whl", 10),
        _dist("nvidia_x-1-py3-none-manylinux2014_x86_64.whl", 20),
        _dist("nvidia_x-1-py3-none-manylinux2014_aarch64.whl", 30),
        _dist("nvidia_x-1-py3-none-win_amd64.whl", 40),
        _dist("nvidia_x-1-cp311-cp311-manylinux_2_28_x86_64.whl", 50),
        _dist("nvidia_x-1-py3-none-manylinux_2_28_x86_64.whl", 60, yanked=True),
    ]
    assert g.pick_wheel(files).size == 20
    assert g.pick_wheel(files[2:4]) is None
    assert g.manylinux_glibc("a-1-py3-none-manylinux_2_27_x86_64.whl") == (2, 27)

    def wheel(v: str):
        return [_dist(f"nvidia_cudnn_cu11-{v}-py3-none-manylinux1_x86_64.whl")]

    index = {Version(v): wheel(v) for v in ("8.5.0.96", "8.6.0.163", "8.9.6.50", "9.1.0.70")}
    index[Version("8.9.7.29")] = [_dist("nvidia_cudnn_cu11-8.9.7.29-py3-none-win_amd64.whl")]
    assert g.pick_cudnn(index, "8.6", "tf") == Version("8.6.0.163")  # the tested minor first
    assert g.pick_cudnn(index, "8.1", "tf") == Version("8.9.6.50")  # else the newest 8.x above it
    assert g.pick_cudnn(index, "8.7", "tf") == Version("8.9.6.50")
    with pytest.raises(g.GenError):
        g.pick_cudnn(index, "9.3", "tf")


# ---------------------------------------------------------------------------------------------- Rasa Pro

PRO_METADATA = """Metadata-Version: 2.1
Name: rasa-pro
Version: 3.21.0
Requires-Python: >=3.11,<3.15
Provides-Extra: nlu
Provides-Extra: full
Requires-Dist: rasa-sdk (==3.21.0)
Requires-Dist: tensorflow (>=2.21.0,<2.22.0) ; ((sys_platform != "darwin" or platform_machine != "arm64") and python_version < "3.12") and (extra == "full" or extra == "nlu")
Requires-Dist: tensorflow (>=2.21.0,<2.22.0) ; (python_version == "3.12") and (extra == "full" or extra == "nlu")
Requires-Dist: tensorflow-text (>=2.21.0,<2.22.0) ; (python_version == "3.12") and (extra == "full" or extra == "nlu")
Requires-Dist: tensorflow-text (>=2.21.0,<2.22.0) ; (sys_platform != "win32" and platform_machine != "arm64" and platform_machine != "aarch64" and python_version < "3.12") and (extra == "full" or extra == "nlu")
"""


def test_markers_are_evaluated_with_the_nlu_extra():
    md = _metadata(PRO_METADATA)
    assert g.find_requirement(md, "tensorflow", ["3.11"], "p", "nlu") == ">=2.21.0,<2.22.0"
    assert g.find_requirement(md, "tensorflow", ["3.12"], "p", "nlu") == ">=2.21.0,<2.22.0"
    assert g.find_requirement(md, "tensorflow", ["3.13"], "p", "nlu") is None
    assert g.find_requirement(md, "tensorflow", ["3.12"], "p") is None  # no extra: no TensorFlow
    assert g.find_requirement(md, "rasa-sdk", ["3.13"], "p", "nlu") == "==3.21.0"


def test_python_minors_and_ranges():
    assert g.pro_pythons(SpecifierSet(">=3.9.2,<3.12")) == ["3.9", "3.10", "3.11"]
    assert g.pro_pythons(SpecifierSet(">=3.10.0,<3.14")) == ["3.10", "3.11", "3.12", "3.13"]
    allowed = ["3.11", "3.12", "3.13", "3.14"]
    assert g.python_range(allowed, allowed, ">=3.11,<3.15") == ">=3.11,<3.15"
    assert g.python_range(["3.11", "3.12"], allowed, ">=3.11,<3.15") == ">=3.11,<3.13"


class _FakeReader:
    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def read(self, dist_file):
        return _metadata(self.texts[dist_file.filename])


def _pro_context():
    def tf_wheels(version: str, pythons: list[str]) -> list:
        tag = {"3.10": "310", "3.11": "311", "3.12": "312", "3.13": "313"}
        return [
            _dist(f"tensorflow-{version}-cp{tag[p]}-cp{tag[p]}-manylinux_2_27_x86_64.whl") for p in pythons
        ]

    tf_index = {
        Version("2.21.0"): tf_wheels("2.21.0", ["3.10", "3.11", "3.12", "3.13"]),
        Version("2.21.1rc0"): tf_wheels("2.21.1rc0", ["3.12"]),
        Version("2.20.0"): tf_wheels("2.20.0", ["3.12"]),
    }
    tft_file = "tensorflow_text-2.21.1-cp312-cp312-manylinux_2_17_x86_64.whl"
    tft_index = {
        Version("2.21.1"): [
            _dist(tft_file),
            _dist("tensorflow_text-2.21.1-cp311-cp311-manylinux_2_17_x86_64.whl"),
        ]
    }
    tested = g.load_tested_builds(g.TESTED_BUILDS_FILE)
    drivers = g.load_cuda_drivers(g.CUDA_DRIVERS_FILE)
    reader = _FakeReader(
        {
            tft_file: "Metadata-Version: 2.1\nName: tensorflow-text\nRequires-Dist: tensorflow (<2.22,>=2.21.0)\n",
            "tensorflow_text-2.21.1-cp311-cp311-manylinux_2_17_x86_64.whl": (
                "Metadata-Version: 2.1\nName: tensorflow-text\nRequires-Dist: tensorflow (<2.22,>=2.21.0)\n"
            ),
        }
    )
    return g.Context(tf_index, tft_index, tested, drivers, set(), reader)


def test_pro_row_takes_the_newest_python_that_gets_tensorflow(compat):
    row = g.resolve_pro_release(_pro_context(), Version("3.21.0"), _metadata(PRO_METADATA))
    assert set(row) == set(next(iter(compat["releases"].values())))
    assert row["tensorflow"] == "2.21.0" and row["tensorflow_text"] == "2.21.1"
    # 3.13/3.14 get no TensorFlow from rasa-pro[nlu]; 3.12 is picked, 3.11 gets the same
    assert row["python"] == ">=3.11,<3.13"
    assert row["cuda"] == "12.5" and row["cudnn"] == "9.3" and row["min_driver"] == "555.42.02"
    assert row["gpu_base_image"] == "tensorflow/tensorflow:2.21.0-gpu"


def test_pro_row_stops_when_no_python_gets_tensorflow():
    text = PRO_METADATA.replace(">=2.21.0,<2.22.0", ">=2.30,<2.31")
    with pytest.raises(g.GenError, match="no Python it allows"):
        g.resolve_pro_release(_pro_context(), Version("3.21.0"), _metadata(text))


# ---------------------------------------------------------------------------------------------- compat.json

SONAME = re.compile(r"lib[\w+-]+(?:\.[\w+-]+)*\.so(?:\.\d+)+")


def test_compat_json_keeps_its_layout(compat):
    assert list(compat) == [
        "schema",
        "generated_by",
        "default",
        "releases",
        "cuda_wheels",
        "pro_default",
        "pro_releases",
    ]
    for key in ("releases", "pro_releases", "cuda_wheels"):
        versions = [Version(v) for v in compat[key]]
        assert versions == sorted(versions), key
    assert not set(compat["releases"]) & set(compat["pro_releases"])


def test_every_cuda_wheels_entry_pins_exact_versions_and_names_sonames(compat):
    assert compat["cuda_wheels"]
    for tf, entry in compat["cuda_wheels"].items():
        assert set(entry) == {
            "cuda",
            "cudnn",
            "min_driver",
            "min_driver_compat",
            "packages",
            "libraries",
            "download_bytes",
            "source",
        }, tf
        assert entry["packages"] and list(entry["packages"]) == sorted(entry["packages"])
        for name, version in entry["packages"].items():
            assert name.startswith("nvidia-") and re.fullmatch(r"\d+(\.\d+)+", version), (tf, name, version)
            assert str(Version(version)) == version
        assert entry["libraries"] and entry["libraries"] == sorted(entry["libraries"])
        for soname in entry["libraries"]:
            assert SONAME.fullmatch(soname), (tf, soname)
            assert not soname.startswith(("libcuda.so", "libnvidia-ml.so", "libnvinfer")), (tf, soname)
        assert {"libcudart", "libcublas", "libcudnn"} <= {s.split(".so")[0] for s in entry["libraries"]}
        assert isinstance(entry["download_bytes"], int) and entry["download_bytes"] > 100_000_000
        assert re.fullmatch(r"\d+\.\d+", entry["cuda"]) and re.fullmatch(r"\d+\.\d+", entry["cudnn"])
        assert entry["min_driver"] and entry["source"]


def test_tensorflow_2_12_gets_the_cuda_11_8_wheels_with_cudnn_8_6(compat):
    entry = compat["cuda_wheels"]["2.12.0"]
    expected = {
        "nvidia-cuda-runtime-cu11": "11.8.89",
        "nvidia-cublas-cu11": "11.11.3.6",
        "nvidia-cufft-cu11": "10.9.0.58",
        "nvidia-curand-cu11": "10.3.0.86",
        "nvidia-cusolver-cu11": "11.4.1.48",
        "nvidia-cusparse-cu11": "11.7.5.86",
        "nvidia-cudnn-cu11": "8.6.0.163",
        # TensorFlow 2.12 opens libcupti.so.11.8 (profiler, optional); it does not open nvrtc
        "nvidia-cuda-cupti-cu11": "11.8.87",
    }
    assert entry["packages"] == expected
    assert entry["packages"]["nvidia-cudnn-cu11"].startswith("8.6.")
    assert (entry["cuda"], entry["cudnn"]) == ("11.8", "8.6")
    assert (entry["min_driver"], entry["min_driver_compat"]) == ("520.61.05", "450.80.02")
    assert "libcudart.so.11.0" in entry["libraries"] and "libcudnn.so.8" in entry["libraries"]


def test_cuda_wheels_cover_the_rows_that_can_have_them(compat):
    rows = [*compat["releases"].values(), *compat["pro_releases"].values()]
    for row in rows:
        has_wheels = row["tensorflow"] in compat["cuda_wheels"]
        assert has_wheels == (not row["cuda"].startswith("10.")), row["tensorflow"]
    assert set(compat["cuda_wheels"]) <= {row["tensorflow"] for row in rows}


def test_every_pro_row_is_a_full_row(compat):
    keys = set(next(iter(compat["releases"].values())))
    assert len(compat["pro_releases"]) > 100
    for version, row in compat["pro_releases"].items():
        assert Version(version) >= Version("3.8.0") and not Version(version).is_prerelease
        assert set(row) == keys, version
        python = SpecifierSet(row["python"])
        assert python and any(python.contains(f"3.{m}.0") for m in range(9, 15)), version
        assert Version(row["tensorflow"]) in SpecifierSet(row["tensorflow_spec"]), version
        assert row["gpu_base_image"] == f"tensorflow/tensorflow:{row['base_tensorflow']}-gpu"


def test_pro_default_is_the_newest_final_pro_release(compat):
    versions = [Version(v) for v in compat["pro_releases"]]
    assert compat["pro_default"] == str(max(versions))
    assert not Version(compat["pro_default"]).is_prerelease
    assert compat["pro_default"] in compat["pro_releases"]
