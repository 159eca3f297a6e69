"""Published image names, registry settings, pulling back instead of building, and push error messages (pure: no
engine; the real push and pull are in test_push.py)."""

from __future__ import annotations

import json

import pytest
from support import EXAMPLE_BOT, run_cli

from rasa_gpu.compat import load_matrix
from rasa_gpu.engine import CHECK_LABEL
from rasa_gpu.engine.images import split_ref as _split_ref
from rasa_gpu.engine.registries import _LayerProgress, _registry_problem
from rasa_gpu.errors import PullError, PushError, SettingsError
from rasa_gpu.images import ImageSpec, candidate, ensure_image
from rasa_gpu.push import DEFAULT_IMAGE_NAME, published_ref, push_image
from rasa_gpu.settings import Settings, check_image_name, check_registry, load_settings


def spec(**kw):
    return ImageSpec(release=load_matrix().get("3.6.21"), base_image="tensorflow/tensorflow:2.12.0-gpu", **kw)


# ---- names -----------------------------------------------------------------------------------------------------------


def test_published_name_of_the_shared_rasa_image_carries_its_hash():
    s = spec()
    digest = s.tag().rsplit("-", 1)[1]
    assert s.tag() == f"rasa-gpu/rasa:3.6.21-tf2.12.0-gpu-{digest}"
    assert (
        published_ref(s, "localhost:5000", "rasa-gpu")
        == f"localhost:5000/rasa-gpu:3.6.21-tf2.12.0-gpu-{digest}"
    )
    assert DEFAULT_IMAGE_NAME == "rasa-gpu"
    assert published_ref(s, "registry.example.com/team/") == (
        f"registry.example.com/team/rasa-gpu:3.6.21-tf2.12.0-gpu-{digest}"
    )
    cpu = spec(variant="cpu", cuda="none")
    assert published_ref(cpu, "localhost:5000", "x").startswith("localhost:5000/x:3.6.21-tf2.12.0-cpu-")


def test_published_name_of_a_bot_image_uses_the_bot_stage_hash():
    s = spec(extra_requirements=("nltk==3.8",))
    bot_hash = s.tag().rsplit("-", 1)[1]
    assert s.tag() == f"rasa-gpu/bot:3.6.21-gpu-{bot_hash}"
    ref = published_ref(s, "127.0.0.1:5000", "team/support-bot")
    assert ref == f"127.0.0.1:5000/team/support-bot:3.6.21-tf2.12.0-gpu-{bot_hash}"
    assert ref != published_ref(spec(), "127.0.0.1:5000", "team/support-bot")
    # Same inputs, same name: a teammate computes it without asking anyone.
    assert ref == published_ref(spec(extra_requirements=("nltk==3.8",)), "127.0.0.1:5000", "team/support-bot")
    # Where the image is published is not part of what it is made of.
    assert spec(registry="localhost:5000").tag() == spec().tag()


@pytest.mark.parametrize(
    "registry",
    ["localhost:5000", "127.0.0.1:5000", "registry.example.com", "registry.example.com/team", "[::1]:5000"],
)
def test_good_registries(registry):
    assert check_registry(registry) == registry


@pytest.mark.parametrize(
    ("registry", "needle"),
    [
        ("bad registry!", "is not a registry"),
        ("", "is not a registry"),
        ("https://registry.example.com", "without it"),
        ("myaccount", "Docker Hub account"),
        ("localhost:99999", "valid port"),
        ("registry.example.com/Team", "is not a registry"),
        ("registry.example.com//team", "is not a registry"),
    ],
)
def test_bad_registries_name_the_option(registry, needle):
    with pytest.raises(SettingsError) as info:
        check_registry(registry)
    assert str(info.value).startswith("--registry: ") and needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["Bad", "a//b", "-x", "", "x:tag", "a b"])
def test_bad_image_names_name_the_option(name):
    with pytest.raises(SettingsError, match="^--name: .* is not an image name"):
        check_image_name(name)
    with pytest.raises(SettingsError, match="--name"):
        published_ref(spec(), "localhost:5000", name)


# ---- settings ----------------------------------------------------------------------------------------------------------


def test_registry_and_image_name_settings(tmp_path):
    (tmp_path / "rasa-gpu.toml").write_text(
        'registry = "registry.example.com/team/"\nimage_name = "support-bot"\n'
    )
    settings = load_settings(tmp_path)
    assert settings.registry == "registry.example.com/team" and settings.image_name == "support-bot"
    merged = settings.merged(Settings(registry="localhost:5000"))
    assert merged.registry == "localhost:5000" and merged.image_name == "support-bot"
    assert Settings().registry is None and Settings().image_name is None


def test_bad_registry_setting_names_the_file_or_the_option(tmp_path):
    (tmp_path / "rasa-gpu.toml").write_text('registry = "not a registry"\n')
    with pytest.raises(SettingsError, match="^rasa-gpu.toml: 'not a registry' is not a registry"):
        load_settings(tmp_path)
    with pytest.raises(SettingsError, match="^--name: "):
        Settings().merged(Settings(image_name="UPPER"))
    with pytest.raises(SettingsError, match="^--registry: "):
        Settings().merged(Settings(registry="a b"))


def test_push_without_a_registry_says_how_to_give_one():
    result = run_cli("push", str(EXAMPLE_BOT), env={"RASA_GPU_REGISTRY": ""})
    assert result.returncode == 1 and "Traceback" not in result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "push needs a registry: --registry HOST[:PORT][/PATH] or registry = ... in rasa-gpu.toml" in line


# ---- pulling back instead of building ---------------------------------------------------------------------------


class FakeEngine:
    """Counts what image resolution asks of the engine; `published` is what the registry holds."""

    def __init__(self, present=(), published=(), pull_error=None, push_error=None):
        self.present, self.published = set(present), set(published)
        self.pull_error, self.push_error = pull_error, push_error
        self.calls: list[tuple[str, ...]] = []

    def image_id(self, ref):
        return "sha256:x" if ref in self.present else None

    def pull(self, ref, on_line):
        self.present.add(ref)

    def build(self, context, *, tag, target, labels, on_line, secret_args):
        self.calls.append(("build", target))
        self.present.add(tag)
        return "sha256:x"

    def pull_published(self, ref, on_line):
        self.calls.append(("pull", ref))
        if self.pull_error:
            raise PullError(self.pull_error)
        if ref not in self.published:
            return None
        self.present.add(ref)
        return "sha256:x"

    def tag(self, image, ref):
        self.calls.append(("tag", image, ref))
        self.present.add(ref)

    def push(self, ref, on_line):
        self.calls.append(("push", ref))
        if self.push_error:
            raise PushError(self.push_error)
        self.published.add(ref)
        return "sha256:digest"

    def image_labels(self, ref):
        return {}  # no Python label

    def run_to_completion(self, spec):
        """What the checks' throw-away containers print: the tiny bot's and the CUDA check's reports; no Python
        version (the check lets the build go on)."""
        check = spec.labels[CHECK_LABEL]
        if check == "smoke":
            self.calls.append(("smoke", spec.image))
            return 0, [json.dumps({"ok": True, "seconds": 12.0})]
        if check == "cuda":
            self.calls.append(("cuda_check", spec.image))
            libraries = json.loads(spec.command[0])
            return 0, [
                json.dumps({"ready": True, "cuda": "11.8", "cudnn": "8", "loaded": libraries, "problems": []})
            ]
        return 1, []

    def remove_image(self, ref):
        self.calls.append(("remove", ref))
        self.present.discard(ref)

    def image_size(self, ref):
        return 2_840_000_000


def test_a_published_image_is_pulled_and_tagged_instead_of_built():
    s = spec(registry="localhost:5000")
    ref = published_ref(s, "localhost:5000")
    engine, lines = FakeEngine(present={s.base_image}, published={ref}), []
    result = ensure_image(engine, s, lines.append)
    assert result.built is False and result.pulled_from == ref and result.tag == s.tag()
    assert engine.calls == [("pull", ref), ("tag", ref, s.tag())]
    assert any("pulled" in line and ref in line for line in lines)


def test_not_in_the_registry_or_registry_refusing_falls_back_to_building():
    s = spec(registry="localhost:5000")
    engine, lines = FakeEngine(present={s.base_image}), []
    assert ensure_image(engine, s, lines.append).built is True
    built = engine.calls[-4][1]
    assert built.startswith(candidate(s.tag()) + "-")  # the build's own candidate name
    assert engine.calls[-5:] == [
        ("build", "rasa"),
        ("smoke", built),
        ("cuda_check", built),
        ("tag", built, s.tag()),
        ("remove", built),
    ]
    assert any("is not in the registry" in line for line in lines)

    engine, lines = FakeEngine(present={s.base_image}, pull_error="registry refused (not logged in)"), []
    assert ensure_image(engine, s, lines.append).built is True
    assert any("not pulled, building instead: registry refused" in line for line in lines)


def test_without_a_registry_or_with_rebuild_nothing_is_pulled():
    s = spec()
    engine = FakeEngine(present={s.base_image})
    assert ensure_image(engine, s, print).built is True
    assert [c[0] for c in engine.calls] == ["build", "smoke", "cuda_check", "tag", "remove"]
    local = spec(registry="localhost:5000")
    engine = FakeEngine(present={local.tag()}, published={published_ref(local, "localhost:5000")})
    assert ensure_image(engine, local, print).built is False and engine.calls == []  # found locally first
    engine = FakeEngine(present={local.base_image}, published={published_ref(local, "localhost:5000")})
    assert ensure_image(engine, local, print, rebuild=True).built is True
    assert [c[0] for c in engine.calls] == ["build", "smoke", "cuda_check", "tag", "remove"]


# ---- push ------------------------------------------------------------------------------------------------------------


def test_push_tags_and_pushes_an_existing_image():
    s = spec()
    engine = FakeEngine(present={s.tag()})
    result = push_image(engine, s, "localhost:5000", "rasa-gpu", print)
    ref = published_ref(s, "localhost:5000")
    assert engine.calls == [("tag", s.tag(), ref), ("push", ref)]
    assert (result.ref, result.digest, result.built, result.size) == (
        ref,
        "sha256:digest",
        False,
        2_840_000_000,
    )
    assert result.to_json()["local_tag"] == s.tag()


def test_push_builds_a_missing_image_and_a_failed_push_leaves_no_name_behind():
    s = spec()
    engine = FakeEngine(present={s.base_image}, push_error="refused")
    with pytest.raises(PushError):
        push_image(engine, s, "localhost:5000", "rasa-gpu", print)
    ref = published_ref(s, "localhost:5000")
    assert [c[0] for c in engine.calls] == [
        "build",
        "smoke",
        "cuda_check",
        "tag",
        "remove",
        "tag",
        "push",
        "remove",
    ]
    assert ref not in engine.present and s.tag() in engine.present


def test_bad_registry_fails_before_anything_is_built():
    engine = FakeEngine()
    with pytest.raises(SettingsError, match="--registry"):
        push_image(engine, spec(), "no registry", "rasa-gpu", print)
    assert engine.calls == []


# ---- what a registry's refusal means -------------------------------------------------------------------------------


def test_registry_errors_become_one_line_with_what_to_do():
    ref = "127.0.0.1:5999/rasa-gpu:3.6.21-tf2.12.0-gpu-abc"
    login = _registry_problem("push", ref, "no basic auth credentials")
    assert (
        login == "registry 127.0.0.1:5999 refused the push (not logged in): run `docker login 127.0.0.1:5999`"
    )
    assert "docker login" in _registry_problem("push", ref, "unauthorized: authentication required")
    down = _registry_problem(
        "push", ref, 'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused'
    )
    assert down.startswith("no registry answers at 127.0.0.1:5999")
    nohost = _registry_problem(
        "pull", "nosuch.invalid:5000/x:y", "dial tcp: lookup nosuch.invalid: no such host"
    )
    assert nohost.startswith("no registry answers at nosuch.invalid:5000")
    tls = _registry_problem(
        "push",
        "10.0.0.5:5000/x:y",
        'Get "https://10.0.0.5:5000/v2/": http: server gave HTTP response to HTTPS client',
    )
    assert "insecure-registries in /etc/docker/daemon.json" in tls and "TLS" in tls
    assert all("\n" not in m for m in (login, down, nohost, tls))


def test_refs_split_at_the_tag_not_at_the_port():
    assert _split_ref("127.0.0.1:5000/rasa-gpu:3.6.21-x") == ("127.0.0.1:5000/rasa-gpu", "3.6.21-x")
    assert _split_ref("localhost:5000/team/bot") == ("localhost:5000/team/bot", "latest")


def test_layer_progress_is_a_few_lines_not_one_per_chunk():
    lines: list[str] = []
    progress = _LayerProgress("pushed", lines.append, every=3600)
    progress.feed({"status": "The push refers to repository [localhost:5000/rasa-gpu]"})
    for current in range(0, 1000, 10):
        progress.feed(
            {"status": "Pushing", "id": "abc", "progressDetail": {"current": current, "total": 1000}}
        )
    progress.feed({"status": "Pushed", "id": "abc", "progressDetail": {}})
    progress.feed({"status": "Layer already exists", "id": "def", "progressDetail": {}})
    assert lines == [
        "The push refers to repository [localhost:5000/rasa-gpu]",
        "abc: Pushed",
        "def: Layer already exists",
    ]


def test_push_prints_ref_and_digest_on_one_line_or_json(monkeypatch):
    import json

    from click.testing import CliRunner

    from rasa_gpu import cli as cli_mod
    from rasa_gpu import push
    from rasa_gpu.engine import Engine
    from rasa_gpu.push import PushResult

    result = PushResult(
        "localhost:5000/rasa-gpu:3.6.21-tf2.12.0-gpu-abc", "sha256:d", "sha256:i", 5, "t", False
    )
    monkeypatch.setattr(Engine, "connect", classmethod(lambda cls: None))
    monkeypatch.setattr(push, "push_image", lambda *a, **k: result)
    runner = CliRunner()
    plain = runner.invoke(cli_mod.cli, ["push", str(EXAMPLE_BOT), "--registry", "localhost:5000"])
    assert plain.exit_code == 0, plain.output
    assert plain.stdout == f"{result.ref} {result.digest}\n"
    as_json = runner.invoke(cli_mod.cli, ["push", str(EXAMPLE_BOT), "--registry", "localhost:5000", "--json"])
    assert json.loads(as_json.stdout)["digest"] == "sha256:d"
