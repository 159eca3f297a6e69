"""The locked dependency sets (rasa_gpu/data/locks), how a build uses them, and the base a registry-less machine
builds on. Pure: files, rendering and a fake engine; the real builds are in test_docker_train.py."""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from rasa_gpu import locks
from rasa_gpu.compat import accepts_python, load_matrix
from rasa_gpu.images import ImageSpec, settle_base, stand_ins

REPO = Path(__file__).resolve().parent.parent
LOCKS = REPO / "rasa_gpu" / "data" / "locks"
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+) \\$")


def _load_tool():
    spec = importlib.util.spec_from_file_location("gen_locks", REPO / "tools" / "gen_locks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_locks"] = module
    spec.loader.exec_module(module)
    return module


def _pins(text: str) -> dict[str, str]:
    """name -> version of a lock, checking that every requirement is exact and carries at least one sha256."""
    pins, current, hashes = {}, None, 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = REQUIREMENT.match(line)
        if match:
            assert current is None or hashes, f"{current} has no hash"
            current, hashes = match.group(1).lower(), 0
            pins[current] = match.group(2)
        else:
            assert current is not None and re.match(r"^    --hash=sha256:[0-9a-f]{64}( \\)?$", line), line
            hashes += 1
    assert current is None or hashes, f"{current} has no hash"
    return pins


def test_every_shipped_lock_is_exact_hashed_and_pins_its_release():
    matrix = load_matrix()
    files = sorted(LOCKS.glob("rasa*-py*.txt"))
    assert len(files) >= 20  # the newest patch of every Open Source minor 3.1-3.6 and Rasa Pro minor 3.8-3.21
    for file in files:
        package, version, python = re.match(
            r"^(rasa(?:-pro)?)-([\d.]+)-py(\d\.\d+)\.txt$", file.name
        ).groups()
        release = matrix.get(version)
        assert release.package == package and accepts_python(release.python, python), file.name
        pins = _pins(file.read_text())
        assert pins[package] == version and pins["tensorflow"] == release.tensorflow, file.name
        if release.tensorflow_text:
            assert pins["tensorflow-text"] == release.tensorflow_text, file.name
    assert set(_pins((LOCKS / "installer.txt").read_text())) == {"uv"}


def test_the_fixes_found_on_the_way_are_in_the_locks():
    # Rasa 3.1 with today's websockets 15 dies at import (sanic 21.12); the lock has what the release knew.
    old = _pins((LOCKS / "rasa-3.1.7-py3.9.txt").read_text())
    assert int(old["websockets"].split(".")[0]) < 11 and old["sanic"].startswith("21.12")
    # Rasa 3.4's DIET dies with numpy 1.24: tools/data/lock_fixes.toml holds it below.
    text = (LOCKS / "rasa-3.4.18-py3.9.txt").read_text()
    assert _pins(text)["numpy"].startswith("1.23") and "# fix (rasa>=3.4,<3.5: numpy<1.24)" in text


def test_a_build_installs_the_lock_of_its_python_with_hashes_and_the_tag_hashes_the_lock(monkeypatch):
    release = load_matrix().get("3.6.21")
    spec = ImageSpec(release=release, base_image="rasa-gpu/base:bullseye", cuda="none")
    dockerfile = spec.dockerfile()
    assert 'lock="/tmp/rasa-gpu/locks/py$py.txt"' in dockerfile and "--require-hashes" in dockerfile
    assert "locks/py3.9.txt" in spec.context_files() and "locks/installer.txt" in spec.context_files()
    before = spec.tag()
    real = locks.release_locks
    changed = {py: data.replace(b"numpy==1.23.5", b"numpy==1.23.4") for py, data in real(release).items()}
    monkeypatch.setattr(locks, "release_locks", lambda r: changed if r == release else real(r))
    assert spec.tag() != before  # a changed lock is a new image


def test_every_cuda_wheel_set_of_the_matrix_is_locked_with_its_exact_pins():
    matrix = load_matrix()
    assert len(matrix.cuda_wheels) >= 2  # CUDA 11.8 (TensorFlow <= 2.14) and 12.5 (2.19, 2.21)
    for tensorflow, wheels in matrix.cuda_wheels.items():
        lock = locks.cuda_lock(tensorflow)
        assert lock is not None, tensorflow
        assert _pins(lock.decode()) == dict(wheels.packages), tensorflow
    assert sorted(p.name for p in LOCKS.glob("cuda-*.txt")) == sorted(
        locks.cuda_lock_name(tf) for tf in matrix.cuda_wheels
    )  # no lock of a set the matrix no longer has


def test_an_image_gets_cuda_from_its_lock_in_a_layer_before_rasa_and_the_tag_hashes_it(monkeypatch):
    matrix = load_matrix()
    release = matrix.get("3.6.21")
    spec = ImageSpec(
        release=release,
        base_image="rasa-gpu/base:bullseye",
        cuda="wheels",
        cuda_wheels=matrix.wheels_for(release.tensorflow),
    )
    dockerfile = spec.dockerfile()
    cuda_at = dockerfile.index('--require-hashes --compile-bytecode -r "/tmp/rasa-gpu/cuda/lock.txt"')
    assert cuda_at < dockerfile.index("COPY locks ")
    assert "nvidia-cudnn-cu11==" not in dockerfile  # the pins are in the lock, with their hashes
    files = spec.context_files()
    assert files["cuda/lock.txt"] == locks.cuda_lock(release.tensorflow)
    assert files["cuda/installer.txt"] == locks.installer()
    assert "cuda/lock.txt" not in replace(spec, cuda="none").context_files()
    before = spec.rasa_tag()
    real = locks.cuda_lock
    monkeypatch.setattr(locks, "cuda_lock", lambda tf: real(tf).replace(b"sha256:39fb", b"sha256:39fc"))
    assert spec.rasa_tag() != before  # a changed CUDA lock is a new image
    monkeypatch.setattr(locks, "cuda_lock", lambda tf: None)  # a set without a lock: pinned, for pip
    assert '"nvidia-cudnn-cu11==8.6.0.163"' in spec.dockerfile() and "cuda/lock.txt" not in spec.dockerfile()


def test_a_release_without_a_lock_says_pip_resolves_today():
    release = load_matrix().get("3.6.20")
    assert locks.pythons(release) == []
    dockerfile = ImageSpec(release=release, base_image="rasa-gpu/base:bullseye", cuda="none").dockerfile()
    assert "--require-hashes" not in dockerfile and 'pip install "rasa==3.6.20"' in dockerfile


def test_python_ranges_admit_a_minor_when_some_patch_of_it_fits():
    assert accepts_python(">=3.9.2,<3.11", "3.9")  # Rasa Pro 3.10 on bullseye's 3.9.2
    assert not accepts_python(">=3.7,<3.9", "3.9") and accepts_python(">=3.7,<3.9", "3.8")


# ---- the base a registry-less machine builds on -----------------------------------------------------------------


class BaseEngine:
    """Answers what settle_base asks: which images are here, which can be pulled, the labelled bases."""

    def __init__(self, present=(), bases=(), pullable=()):
        self.present, self.bases, self.pullable = set(present), list(bases), set(pullable)

    def image_id(self, ref):
        return "sha256:x" if ref in self.present else None

    def can_pull(self, ref):
        return ref in self.pullable

    def labelled_images(self, label):
        return [([name], {label: python}) for name, python in self.bases]


def _unnamed(version: str = "3.6.21", variant: str = "gpu") -> ImageSpec:
    release = load_matrix().get(version)
    base = release.gpu_base_image if variant == "gpu" else release.cpu_base_image
    cuda = "base" if variant == "gpu" else "none"
    return ImageSpec(
        release=release, base_image=base, variant=variant, cuda=cuda,
        cuda_wheels=load_matrix().wheels_for(release.tensorflow), base_named=False,
    )  # fmt: skip


def test_the_registry_less_base_stands_in_for_the_matrix_base_and_gets_cuda_from_wheels():
    spec, lines = _unnamed(), []
    engine = BaseEngine(present={"rasa-gpu/base:bullseye"})
    settled = settle_base(engine, spec, lines.append)
    assert (settled.base_image, settled.cuda) == ("rasa-gpu/base:bullseye", "wheels")
    assert len(lines) == 1 and "using the registry-less base rasa-gpu/base:bullseye" in lines[0]
    # the same image as naming it: one tag, so the model trained either way is found unchanged
    named = replace(spec, base_image="rasa-gpu/base:bullseye", cuda="wheels", base_named=True)
    assert settled.tag() == named.tag() and settled.tag() in [s.tag() for s in stand_ins(spec)]
    cpu = settle_base(engine, _unnamed(variant="cpu"), print)
    assert (cpu.base_image, cpu.cuda) == ("rasa-gpu/base:bullseye", "none")


def test_the_stand_in_is_found_by_its_label_and_only_for_a_python_the_release_accepts():
    engine = BaseEngine(bases=[("rasa-gpu/base:mine", "3.9"), ("rasa-gpu/base:py311", "3.11")])
    assert settle_base(engine, _unnamed("3.6.21"), print).base_image == "rasa-gpu/base:mine"
    assert settle_base(engine, _unnamed("3.21.0"), print).base_image == "rasa-gpu/base:py311"
    only_old = BaseEngine(bases=[("rasa-gpu/base:bullseye", "3.9")])
    assert settle_base(only_old, _unnamed("3.21.0"), print).base_image == "tensorflow/tensorflow:2.21.0-gpu"


@pytest.mark.parametrize(
    "engine",
    [
        BaseEngine(
            present={"tensorflow/tensorflow:2.12.0-gpu", "rasa-gpu/base:bullseye"}
        ),  # the matrix's is here
        BaseEngine(present={"rasa-gpu/base:bullseye"}, pullable={"tensorflow/tensorflow:2.12.0-gpu"}),
        BaseEngine(),  # nothing to stand in: the pull names the way out
    ],
)
def test_the_matrix_base_is_kept_when_it_can_be_had_or_nothing_stands_in(engine):
    spec = _unnamed()
    assert settle_base(engine, spec, print) == spec


def test_a_named_base_is_never_replaced():
    spec = replace(_unnamed(), base_named=True)
    assert settle_base(BaseEngine(present={"rasa-gpu/base:bullseye"}), spec, print) == spec
    assert stand_ins(spec) == []


# ---- tools/gen_locks.py -----------------------------------------------------------------------------------------


def test_the_generator_picks_the_bases_pythons_fixes_and_a_date_after_the_release():
    import datetime as dt

    tool = _load_tool()
    rows = tool.load_rows()
    pythons = {t.python for t in tool.targets(rows, [("rasa-pro", "3.10.28")], None)}
    assert pythons == {"3.9"}  # >=3.9.2,<3.11 on bullseye
    assert {t.python for t in tool.targets(rows, [("rasa-pro", "3.15.36")], None)} == {
        "3.12"
    }  # no base has it
    fixes = tool.load_fixes()
    assert [f["require"] for f in tool.fixes_for(fixes, "rasa", "3.4.18")] == [["numpy<1.24"]]
    assert tool.fixes_for(fixes, "rasa", "3.5.17") == [] and tool.fixes_for(fixes, "rasa-pro", "3.4.0") == []
    assert [f["exclude"] for f in tool.fixes_for(fixes, "rasa-pro", "3.21.0")] == [["mitie"]]
    assert tool.fixes_for(fixes, "rasa-pro", "3.13.25") == []
    assert tool.file_version("tensorflow-text", "tensorflow_text-2.12.0-cp39-cp39-manylinux.whl") == "2.12.0"
    assert tool.file_version("rasa", "rasa-3.6.21.tar.gz") == "3.6.21"
    day = dt.datetime(2025, 1, 14, 10, tzinfo=dt.timezone.utc)
    tool._UPLOADS.update(
        {"rasa": {"3.6.21": day}, "tensorflow": {"2.12.0": day - dt.timedelta(days=600)},
         "tensorflow-text": {"2.12.0": day - dt.timedelta(days=500)}}
    )  # fmt: skip
    target = tool.Target("rasa", "3.6.21", "2.12.0", "2.12.0", "3.9")
    assert tool.cutoff(target, 30) == dt.date(2025, 2, 14)
    assert target.path == LOCKS / "rasa-3.6.21-py3.9.txt"  # the file rasa_gpu.locks reads
    assert locks.pythons(load_matrix().get("3.6.21")) == ["3.9"]


# ---- the one line of a failed build -----------------------------------------------------------------------------


def test_a_failed_pip_install_is_named_by_pips_own_reason_and_the_package_it_was_building():
    from rasa_gpu.engine import build_cause

    # Rasa Pro 3.8 resolved today on Python 3.9 (measured 2026-12): a build dependency of a package built from source.
    output = [
        "Collecting rasa-pro==3.8.18",
        "Collecting spacy<4.0.0,>=3.5.4",
        "  Downloading spacy-3.8.7.tar.gz (1.3 MB)",
        "  Installing build dependencies: started",
        "  Installing build dependencies: finished with status 'error'",
        "\x1b[91m  error: subprocess-exited-with-error",
        "  × pip subprocess to install build dependencies did not run successfully.",
        "  │ exit code: 1",
        "  ╰─> [4 lines of output]",
        "      ERROR: Ignored the following versions that require a different python version: 8.3.12 Requires-Python >=3.10",
        "      ERROR: Could not find a version that satisfies the requirement thinc<8.4.0,>=8.3.12 (from versions: 8.3.4)",
        "      ERROR: No matching distribution found for thinc<8.4.0,>=8.3.12",
        "      [end of output]",
        "error: subprocess-exited-with-error\x1b[0m",
    ]
    assert (
        build_cause(output)
        == "No matching distribution found for thinc<8.4.0,>=8.3.12 (needed to build spacy<4.0.0,>=3.5.4)"
    )
    uv = ["Using Python 3.9.2 environment at: /usr", "error: Failed to fetch: https://pypi.corp/simple/rasa/",
          "  cause: error sending request", "  cause: invalid peer certificate: UnknownIssuer"]  # fmt: skip
    assert (
        build_cause(uv)
        == "Failed to fetch: https://pypi.corp/simple/rasa/: invalid peer certificate: UnknownIssuer"
    )
    imported = ["Traceback (most recent call last):", '  File "<string>", line 1, in <module>',
                "ModuleNotFoundError: No module named 'rasa'"]  # fmt: skip
    assert build_cause(imported) == "ModuleNotFoundError: No module named 'rasa'"
    assert build_cause(["Step 5/9 : RUN false", " ---> Running in 1234"]) is None
    # A bot requirement against the Rasa set held fixed (pip 23's resolver): both sides, in one line.
    conflict = [
        "ERROR: Cannot install -r /tmp/rasa-gpu/bot-requirements.txt (line 1) because these package versions "
        "have conflicting dependencies.", "", "The conflict is caused by:", "    The user requested numpy==1.26.4",
        "    The user requested (constraint) numpy==1.19.5", "", "To fix this you could try to:",
        "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/",
    ]  # fmt: skip
    assert build_cause(conflict) == (
        "conflicting requirements: The user requested numpy==1.26.4; The user requested (constraint) numpy==1.19.5"
    )


def test_the_bot_stage_holds_the_whole_locked_set_fixed():
    release = load_matrix().get("3.6.21")
    spec = ImageSpec(release=release, base_image="rasa-gpu/base:bullseye", cuda="none",
                     extra_requirements=("rasa-gpu-custom-component==1.0",))  # fmt: skip
    bot_stage = spec.dockerfile().split('Stage "bot"')[1]
    assert f'lock="/tmp/rasa-gpu/{locks.CONTEXT_FOLDER}/py$(python3' in bot_stage
    assert ">> /tmp/rasa-gpu/bot-constraints.txt" in bot_stage
    assert (
        "-c /tmp/rasa-gpu/bot-constraints.txt" in bot_stage.split(">> /tmp/rasa-gpu/bot-constraints.txt")[1]
    )


def test_a_lock_fix_of_the_wrong_shape_is_named(tmp_path):
    tool = _load_tool()
    bad = tmp_path / "lock_fixes.toml"
    bad.write_text('[[fix]]\nreleases = "rasa>=3.4"\nrequire = "numpy<1.24"\nwhy = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="fix 1: 'require' must be a list of strings"):
        tool.load_fixes(bad)
    bad.write_text('[[fix]]\nreleases = "rasa>=3.4"\nwhy = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="needs one of 'require', 'exclude', 'only_binary'"):
        tool.load_fixes(bad)


def test_every_shipped_lock_says_the_fixes_the_generator_applies_to_it():
    """The locks in rasa_gpu/data/locks are the generator's output: a lock whose release a fix names carries that
    fix's header line and lacks the packages it excludes (so a lock edited by hand, or not regenerated after a fix
    was added, fails here)."""
    tool = _load_tool()
    fixes = tool.load_fixes()
    checked = 0
    for lock in sorted(tool.LOCKS.glob("rasa*-py*.txt")):
        head = lock.read_text(encoding="utf-8").splitlines()[0]
        package, version = head.removeprefix("# ").split()[:2]
        text = lock.read_text(encoding="utf-8")
        for fix in tool.fixes_for(fixes, package, version):
            assert f"# fix ({fix['releases']}:" in text, lock.name
            for name in fix.get("exclude", []):
                assert not re.search(rf"^{re.escape(name)}==", text, re.MULTILINE), (lock.name, name)
            checked += 1
    assert checked >= 9  # Rasa 3.4 and the eight Pro releases 3.14-3.21


def test_the_generator_tells_which_pins_have_no_wheel_for_the_bases():
    tool = _load_tool()
    files = [
        "blis-1.2.1.tar.gz",
        "blis-1.2.1-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "blis-1.2.0-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "blis-1.2.1-cp39-cp39-musllinux_1_2_x86_64.whl",
        "blis-1.2.1-cp39-cp39-manylinux_2_34_x86_64.whl",  # newer glibc than the bases' 2.31
    ]
    assert not tool.has_wheel(files, "1.2.1", "3.9")
    assert tool.has_wheel(files, "1.2.0", "3.9") and tool.has_wheel(files, "1.2.1", "3.10")
    assert tool.has_wheel(["six-1.17.0-py2.py3-none-any.whl"], "1.17.0", "3.9")
    assert tool.has_wheel(["orjson-3.10.0-cp38-abi3-manylinux_2_28_x86_64.whl"], "3.10.0", "3.11")
    tool._FILES.update(
        {"blis": [{"filename": f} for f in files], "six": [{"filename": "six-1.17.0-py2.py3-none-any.whl"}]}
    )
    lock = "# header\nblis==1.2.1 \\\n    --hash=sha256:00\nsix==1.17.0 \\\n    --hash=sha256:11\n"
    assert tool.built_from_source(lock, "3.9") == ["blis==1.2.1"]
