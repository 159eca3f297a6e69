"""A bot's requirements as Rasa repositories write them (rasa_gpu/requirements.py), pure: every form pip reads and
rasa-gpu builds from, every refusal in one line, the spaCy model rule, and what the image specs make of them."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from rasa_gpu import requirements, spacy_models
from rasa_gpu.compat import load_matrix
from rasa_gpu.errors import ProjectError, RequirementsError, SettingsError
from rasa_gpu.images import ActionsImageSpec, ImageSpec
from rasa_gpu.project import BotProject
from rasa_gpu.requirements import logical_lines, read
from rasa_gpu.settings import Settings, resolve_rasa

RELEASE = load_matrix().get("3.6.21")
WHEEL = "en_core_web_sm-3.4.0-py3-none-any.whl"


def bot(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    root = tmp_path / "bot"
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    root.mkdir(exist_ok=True)
    return root


def refused(tmp_path: Path, files: dict[str, str | bytes]) -> str:
    """The one line that read() refuses these files with."""
    with pytest.raises(RequirementsError) as info:
        read(bot(tmp_path, files))
    message = str(info.value)
    assert "\n" not in message
    return message


# ---- the lines pip reads ---------------------------------------------------------------------------------------------


def test_comments_and_continuations_are_read_as_pip_reads_them():
    text = (
        "# a comment\n"
        "nltk==3.8  # tokenizer\n"
        "https://host/pkg.tar.gz#egg=pkg\n"  # a '#' without space before it is not a comment
        "numpy>=1.19 \\\n"
        "    ,<1.24\n"
        "tail \\\n"
        "# a comment ends the continuation\n"
        "\n"
        "   \n"
    )
    assert logical_lines(text) == [
        (2, "nltk==3.8"),
        (3, "https://host/pkg.tar.gz#egg=pkg"),
        (4, "numpy>=1.19     ,<1.24"),
        (6, "tail"),
    ]


def test_a_demo_layout_splits_into_the_training_image_and_the_action_server(tmp_path):
    root = bot(
        tmp_path,
        {
            "requirements.txt": (
                "-r actions/requirements-actions.txt\n"
                "rasa[spacy]==3.6.21\n"
                "rasa-sdk==3.6.2  # the action server's\n"
                "tensorflow==2.11.0\n"
                "--requirement=components/requirements.txt\n"
                'inflection ; python_version >= "3.8"\n'
            ),
            "components/requirements.txt": "-rmore.txt\n",
            "components/more.txt": "text-unidecode==1.3\n",
            "actions/requirements-actions.txt": "humanize==4.9.0\n",
        },
    )
    found = read(root)
    assert found.training.lines() == ("text-unidecode==1.3", 'inflection ; python_version >= "3.8"')
    assert [r.where for r in found.training.requirements] == ["components/more.txt:1", "requirements.txt:6"]
    assert found.actions.lines() == (
        "humanize==4.9.0",
    )  # the demos' include is the action server's, not training's
    assert [r.line for r in found.rasa_sdk] == ["rasa-sdk==3.6.2"]
    assert found.rasa == requirements.RasaPin("rasa", "==3.6.21", "requirements.txt", ("spacy",), None)
    # tensorflow is the matrix's; rasa itself is the Rasa stage's, its extras a line of the bot stage
    assert found.training_lines("rasa", "3.6.21") == (
        "rasa[spacy]==3.6.21",
        "text-unidecode==1.3",
        'inflection ; python_version >= "3.8"',
    )
    assert resolve_rasa(load_matrix(), root, Settings(), found)[1] == "from requirements.txt (rasa==3.6.21)"


def test_rasa_pro_extras_and_a_marker_on_rasa_are_kept(tmp_path):
    root = bot(
        tmp_path, {"requirements.txt": 'rasa-pro[transformers,spacy]~=3.21.0 ; python_version >= "3.10"\n'}
    )
    found = read(root)
    assert found.rasa is not None and found.rasa.package == "rasa-pro"
    assert found.training_lines("rasa-pro", "3.21.0") == (
        'rasa-pro[spacy,transformers]==3.21.0 ; python_version >= "3.10"',
    )
    assert (
        read(bot(tmp_path / "plain", {"requirements.txt": "rasa==3.6.21\n"})).training_lines("rasa", "3.6.21")
        == ()
    )
    # Rasa Pro's nlu extra is the Rasa stage's own (without MITIE, which needs a compiler): not installed again
    nlu = read(bot(tmp_path / "nlu", {"requirements.txt": "rasa-pro[nlu,spacy]==3.21.0\n"}))
    assert nlu.training_lines("rasa-pro", "3.21.0") == ("rasa-pro[spacy]==3.21.0",)
    only_nlu = read(bot(tmp_path / "pro", {"requirements.txt": "rasa-pro[nlu]\n"}))
    assert only_nlu.training_lines("rasa-pro", "3.21.0") == ()


def test_every_action_server_file_name_in_use_is_read(tmp_path):
    names = requirements.ACTIONS_FILES
    root = bot(tmp_path, {name: f"pkg{i}\n" for i, name in enumerate(names)})
    assert read(root).actions.lines() == tuple(f"pkg{i}" for i in range(len(names)))
    assert read(root).training.lines() == ()


def test_a_constraint_file_holds_versions_and_its_own_includes_follow_pip(tmp_path):
    root = bot(
        tmp_path,
        {
            "requirements.txt": "-c constraints.txt\ninflection\n",
            # pip reads -r inside a constraints file as requirements, -c as constraints
            "constraints.txt": "inflection==0.4.0\n-r extra.txt\n--constraint more-constraints.txt\n",
            "extra.txt": "six\n",
            "more-constraints.txt": "six==1.16.0\n",
            "actions/requirements-actions.txt": "-c ../constraints.txt\nhumanize\n",
        },
    )
    found = read(root)
    assert found.training.lines() == ("six", "inflection")
    assert found.training.constraint_lines() == ("inflection==0.4.0", "six==1.16.0")
    assert found.actions.constraint_lines() == ("inflection==0.4.0", "six==1.16.0")
    assert found.actions.lines() == ("six", "humanize")


def test_a_file_included_twice_adds_its_lines_once(tmp_path):
    root = bot(tmp_path, {"requirements.txt": "-r a.txt\n-r b.txt\n", "a.txt": "-r c.txt\n", "b.txt": "-r c.txt\n",
                          "c.txt": "six\n"})  # fmt: skip
    assert read(root).training.lines() == ("six",)


def test_archives_in_the_bot_folder_are_named_by_their_place_in_the_image(tmp_path):
    root = bot(
        tmp_path,
        {
            "requirements.txt": (
                f"./models-spacy/{WHEEL}\n"
                'wheels/my_comp-1.0.tar.gz ; python_version >= "3.8"\n'
                "actions/../wheels/other-2.0.zip\n"
            ),
            f"models-spacy/{WHEEL}": b"wheel",
            "wheels/my_comp-1.0.tar.gz": b"sdist",
            "wheels/other-2.0.zip": b"zip",
        },
    )
    found = read(root).training
    assert found.lines() == (
        f"en-core-web-sm @ file:///tmp/rasa-gpu/bot-files/models-spacy/{WHEEL}",
        'my-comp @ file:///tmp/rasa-gpu/bot-files/wheels/my_comp-1.0.tar.gz ; python_version >= "3.8"',
        "other @ file:///tmp/rasa-gpu/bot-files/wheels/other-2.0.zip",
    )
    assert found.archives() == (f"models-spacy/{WHEEL}", "wheels/my_comp-1.0.tar.gz", "wheels/other-2.0.zip")
    assert found.names() == {"en-core-web-sm", "my-comp", "other"}


def test_urls_are_kept_and_named(tmp_path):
    root = bot(
        tmp_path,
        {
            "requirements.txt": (
                "en_core_web_md @ https://example.org/en_core_web_md-3.4.1.tar.gz\n"
                "https://example.org/models/download?id=7#egg=en_core_web_lg\n"
                f"https://example.org/{WHEEL}\n"
            )
        },
    )
    found = read(root).training
    assert found.names() == {"en-core-web-md", "en-core-web-lg", "en-core-web-sm"}
    assert found.lines()[1] == "https://example.org/models/download?id=7#egg=en_core_web_lg"


def test_an_index_in_the_file_is_the_builds_and_pypi_itself_changes_nothing(tmp_path):
    root = bot(
        tmp_path,
        {
            "requirements.txt": "-i https://deploy:s3cret@pypi.corp/simple\n--extra-index-url https://extra.corp/simple\n"
            "six\n",
            "actions/requirements.txt": "--index-url=https://deploy:s3cret@pypi.corp/simple\nhumanize\n",
        },
    )
    found = read(root)
    assert (found.index_url, found.index_where) == (
        "https://deploy:s3cret@pypi.corp/simple",
        "requirements.txt:1",
    )
    # the login travels as the index's (images.INDEX_LOGIN_ARG), never in a line pip reads from a layer
    assert found.training_lines("rasa", "3.6.21") == ("--extra-index-url https://extra.corp/simple", "six")
    assert found.actions_lines() == ("--extra-index-url https://extra.corp/simple", "humanize")
    pypi = read(bot(tmp_path / "pypi", {"requirements.txt": "--index-url https://pypi.org/simple/\nsix\n"}))
    assert pypi.index_url is None


def test_an_index_given_twice_is_one_line_naming_both(tmp_path):
    message = refused(tmp_path, {"requirements.txt": "-i https://a.corp/simple\n-r more.txt\n",
                                 "more.txt": "-i https://b.corp/simple\n"})  # fmt: skip
    assert message == (
        "more.txt:1: names the index https://b.corp/simple, but requirements.txt:1 names https://a.corp/simple; a "
        "bot builds from one index: keep one -i (other indexes go in --extra-index-url)"
    )


def test_the_command_lines_index_wins_over_the_files_and_says_so(tmp_path):
    from rasa_gpu.resolve import _index_notes

    found = read(bot(tmp_path, {"requirements.txt": "-i https://files.corp/simple\nsix\n"}))
    settings = Settings().merged(Settings(pip_index_url="https://user:pw@mirror.corp/simple"))
    [note] = _index_notes(settings, found)
    assert note == (
        "requirements.txt:1 names the index https://files.corp/simple, but --pip-index-url names "
        "https://****@mirror.corp/simple: building from https://****@mirror.corp/simple (the command line and the "
        "settings win over the bot's requirements)"
    )
    same = Settings().merged(Settings(pip_index_url="https://files.corp/simple/"))
    assert _index_notes(same, found) == ()


# ---- pyproject.toml -------------------------------------------------------------------------------------------------


def test_pyproject_main_dependencies_train_and_the_actions_group_serves(tmp_path):
    root = bot(
        tmp_path,
        {
            "pyproject.toml": (
                "[project]\n"
                'dependencies = ["rasa[spacy]==3.6.21", "inflection>=0.4"]\n'
                "[project.optional-dependencies]\n"
                'actions = ["humanize==4.9.0"]\n'
                'dev = ["pytest"]\n'
            )
        },
    )
    found = read(root)
    assert found.training_source == "pyproject.toml"
    assert found.training_lines("rasa", "3.6.21") == ("rasa[spacy]==3.6.21", "inflection>=0.4")
    assert found.actions.lines() == ("humanize==4.9.0",)
    assert found.rasa is not None and found.rasa.where == "pyproject.toml"


def test_poetry_dependencies_and_groups(tmp_path):
    root = bot(
        tmp_path,
        {
            f"wheels/{WHEEL}": b"w",
            "pyproject.toml": (
                "[tool.poetry.dependencies]\n"
                'python = "^3.9"\n'
                'rasa = { version = "3.6.21", extras = ["spacy"] }\n'
                'inflection = "^0.4"\n'
                'six = "*"\n'
                'nltk = { version = "~3.8", markers = "python_version >= \'3.8\'" }\n'
                'mlflow = { version = "^2", optional = true }\n'
                f'en_core_web_sm = {{ path = "wheels/{WHEEL}" }}\n'
                "[tool.poetry.group.actions.dependencies]\n"
                'humanize = "4.9.0"\n'
                "[tool.poetry.group.dev.dependencies]\n"
                'pytest = "^8"\n'
            ),
        },
    )
    found = read(root)
    assert found.training_lines("rasa", "3.6.21") == (
        "rasa[spacy]==3.6.21",
        "inflection>=0.4.0,<0.5.0",
        "six",
        "nltk>=3.8.0,<3.9.0 ; python_version >= '3.8'",
        f"en-core-web-sm @ file:///tmp/rasa-gpu/bot-files/wheels/{WHEEL}",
    )
    assert found.actions.lines() == ("humanize==4.9.0",)
    assert found.rasa is not None and found.rasa.where == "pyproject.toml [tool.poetry]"


def test_requirements_txt_lists_the_packages_and_pyproject_still_pins_rasa(tmp_path):
    root = bot(tmp_path, {"requirements.txt": "six\n",
                          "pyproject.toml": '[project]\ndependencies = ["rasa==3.5.17", "ignored"]\n'})  # fmt: skip
    found = read(root)
    assert found.training.lines() == ("six",)
    assert found.rasa is not None and (found.rasa.specifier, found.rasa.where) == (
        "==3.5.17",
        "pyproject.toml",
    )


def test_with_a_requirements_txt_pyprojects_other_dependencies_are_not_read(tmp_path):
    pyproject = (
        '[tool.poetry.dependencies]\nrasa = "3.5.17"\nlib = { path = "../lib", develop = true }\n'
        '[project]\ndependencies = ["-e ../other"]\n'
    )
    found = read(bot(tmp_path, {"requirements.txt": "six\n", "pyproject.toml": pyproject}))
    assert found.rasa is not None and found.rasa.specifier == "==3.5.17"
    with pytest.raises(RequirementsError, match="'develop' is not supported"):
        read(bot(tmp_path / "alone", {"pyproject.toml": pyproject}))


def test_a_poetry_dependency_from_git_is_one_line(tmp_path):
    message = refused(
        tmp_path, {"pyproject.toml": '[tool.poetry.dependencies]\nlib = { git = "https://h/lib.git" }\n'}
    )
    assert message == (
        "pyproject.toml [tool.poetry.dependencies] lib: 'git' is not supported in an image build; give a version, "
        "extras, markers, a url, or the path of a wheel or sdist in the bot folder"
    )


# ---- refusals: one line naming the file, the line and what to do -----------------------------------------------------

REFUSED_OPTIONS = {
    "-e ./mypkg": "requirements.txt:2: '-e ./mypkg' is not supported in an image build; name a wheel or an sdist in "
    "the bot folder instead (`pip wheel PATH -w wheels/` builds one), or the package's name on your index",
    "--find-links ./wheels": "requirements.txt:2: '--find-links ./wheels' is not supported in an image build; name "
    "each archive itself (./wheels/NAME-VERSION-….whl) or give an index with -i",
    "--pre": "requirements.txt:2: '--pre' is not supported in an image build; pin the pre-release itself "
    "(name==1.0rc1): pip then takes it",
    "--trusted-host pypi.corp": "requirements.txt:2: '--trusted-host pypi.corp' is not supported in an image build; "
    "use the index over https (a private CA goes in with --ca-cert)",
    "--no-binary :all:": "requirements.txt:2: '--no-binary :all:' is not supported in an image build; remove it: the "
    "image's pip takes wheels where they exist",
    "--no-index": "requirements.txt:2: '--no-index' is not supported in an image build; remove it: packages come from "
    "the index (-i or --pip-index-url) and from the archives the file names",
    "--require-hashes": "requirements.txt:2: '--require-hashes' is not supported in an image build; remove the "
    "hashes: a bot's packages are held to its Rasa release's locked set (installed with hashes) instead",
    "six==1.16.0 --hash=sha256:00ff": "requirements.txt:2: '--hash' on 'six==1.16.0 --hash=sha256:00ff' is not "
    "supported in an image build; remove the hashes: a bot's packages are held to its Rasa release's locked set "
    "(installed with hashes) instead",
    "--colour red": "requirements.txt:2: '--colour red' is not supported in an image build; remove it (rasa-gpu reads "
    "-r, -c, -i and --extra-index-url in a requirements file)",
    "-r": "requirements.txt:2: '-r' gives -r no value; write -r FILE",
    "--extra-index-url": "requirements.txt:2: '--extra-index-url' gives --extra-index-url no value; write "
    "--extra-index-url URL",
}


@pytest.mark.parametrize("line", list(REFUSED_OPTIONS))
def test_an_option_an_image_build_cannot_honour_is_one_line(tmp_path, line):
    assert refused(tmp_path, {"requirements.txt": f"six\n{line}\n"}) == REFUSED_OPTIONS[line]


REFUSED_LINES = {
    "tiny @ https://deploy:hunter22@pypi.corp/tiny-1.0-py3-none-any.whl": "requirements.txt:1: the URL of tiny "
    "carries a login, which would be in the image for anyone who pulls it; put the login in --pip-index-url or "
    "RASA_GPU_PIP_INDEX_URL (kept out of images) and name the package plainly",
    "https://deploy:hunter22@pypi.corp/tiny-1.0-py3-none-any.whl": "requirements.txt:1: the URL "
    "'https://****@pypi.corp/tiny-1.0-py3-none-any.whl' carries a login, which would be in the image for anyone who "
    "pulls it; put the login in --pip-index-url or RASA_GPU_PIP_INDEX_URL (kept out of images) and name the package "
    "plainly",
    "--extra-index-url https://deploy:hunter22@extra.corp/simple": "requirements.txt:1: the extra index "
    "https://****@extra.corp/simple carries a login, which would be in the image for anyone who pulls it; give that "
    "index with its login through --pip-index-url or RASA_GPU_PIP_INDEX_URL (kept out of images)",
    "--index-url https://${TOKEN}@pypi.corp/simple": "requirements.txt:1: '--index-url https://****@pypi.corp/simple' "
    "uses an environment variable, which the image build does not have; write the value itself (an index's login "
    "goes in --pip-index-url or RASA_GPU_PIP_INDEX_URL, which rasa-gpu keeps out of images)",
    "-i ftp://pypi.corp/simple": "requirements.txt:1: --index-url 'ftp://pypi.corp/simple' is not a package index "
    "URL: it does not start with https:// or http://; use https://HOST/PATH, e.g. https://pypi.example.com/simple (a "
    "login goes in it: https://USER:PASSWORD@HOST/PATH)",
    "git+https://github.com/org/lib.git#egg=lib": "requirements.txt:1: 'git+https://github.com/org/lib.git#egg=lib' "
    "is installed from version control, which needs git in the image; build a wheel (`pip wheel URL -w wheels/`) and "
    "name it (./wheels/NAME-VERSION-….whl), or publish it on your index",
    "lib @ git+https://github.com/org/lib.git": "requirements.txt:1: 'lib @ git+https://github.com/org/lib.git' is "
    "installed from version control, which needs git in the image; build a wheel (`pip wheel URL -w wheels/`) and "
    "name it (./wheels/NAME-VERSION-….whl), or publish it on your index",
    "en_core_web_sm @ file:./models/x.whl": "requirements.txt:1: 'en_core_web_sm @ file:./models/x.whl' names a "
    "file: URL, which pip does not read relative to the bot; write the archive's path itself, relative to the bot "
    "folder (./wheels/NAME-VERSION-….whl)",
    f"/opt/models/{WHEEL}": f"requirements.txt:1: '/opt/models/{WHEEL}' is not relative to the bot folder; put the "
    "archive in the bot and write its path from there (./wheels/NAME-VERSION-….whl)",
    f"../models/{WHEEL}": f"requirements.txt:1: ../models/{WHEEL} is outside the bot folder; rasa-gpu builds only "
    "from files inside the bot: copy the archive into the bot",
    f"./models/{WHEEL}": f"requirements.txt:1: ./models/{WHEEL} does not exist in the bot folder; the path of an "
    "archive is relative to the bot folder (as pip reads it when run there)",
    "./wheels/mypkg.tar.gz": "requirements.txt:1: cannot tell the package of ./wheels/mypkg.tar.gz from its file "
    "name; pip installs a wheel (NAME-VERSION-TAGS.whl) or an sdist (NAME-VERSION.tar.gz) from a path",
    "https://example.org/download?id=7": "requirements.txt:1: cannot tell the package of "
    "'https://example.org/download?id=7' from its file name; add #egg=NAME to the URL, or write NAME @ URL",
    "-r https://example.org/requirements.txt": "requirements.txt:1: '-r https://example.org/requirements.txt' "
    "includes a URL; copy the file into the bot folder and include it by its path",
    "-r ../shared/requirements.txt": "requirements.txt:1: -r ../shared/requirements.txt is outside the bot folder; "
    "rasa-gpu builds only from files inside the bot: copy the file into the bot",
    "-c missing.txt": "requirements.txt:1: -c missing.txt: missing.txt does not exist; fix the path",
    "-r wheels": "requirements.txt:1: -r wheels: wheels is not a file; fix the path",
    "-c constraints-with-extras.txt": "constraints-with-extras.txt:1: the constraint 'rasa[spacy]==3.6.21' names "
    "extras; a constraint names a package and its versions only (pip refuses more)",
}


@pytest.mark.parametrize("line", list(REFUSED_LINES))
def test_a_line_an_image_build_cannot_honour_is_one_line(tmp_path, line):
    files: dict[str, str | bytes] = {
        "requirements.txt": f"{line}\n",
        "wheels/mypkg.tar.gz": b"x",
        "constraints-with-extras.txt": "rasa[spacy]==3.6.21\n",
        f"../models/{WHEEL}": b"w",
        "../shared/requirements.txt": "six\n",
    }
    assert refused(tmp_path, files) == REFUSED_LINES[line]
    assert "hunter22" not in REFUSED_LINES[line]


def test_a_line_that_is_no_requirement_is_one_line_with_packagings_reason(tmp_path):
    message = refused(tmp_path, {"requirements.txt": "six\nnltk=>3.8\n"})
    assert message.startswith(
        "requirements.txt:2: cannot read 'nltk=>3.8' (Expected "
    )  # packaging's own words
    assert message.endswith(
        "); write a PEP 508 requirement (name, versions, [extras], ; markers), a URL, or the path of a wheel or sdist "
        "in the bot folder"
    )


def test_an_include_cycle_is_one_line_with_the_chain(tmp_path):
    message = refused(tmp_path, {"requirements.txt": "-r a/one.txt\n", "a/one.txt": "six\n-r ../two.txt\n",
                                 "two.txt": "-r requirements.txt\n"})  # fmt: skip
    assert message == (
        "two.txt:1: -r requirements.txt includes a file that is already being read (requirements.txt → a/one.txt → "
        "two.txt → requirements.txt); remove one of the includes"
    )


def test_links_out_of_the_bot_are_refused(tmp_path):
    outside = tmp_path / "home"
    outside.mkdir()
    (outside / "reqs.txt").write_text("six\n")
    (outside / WHEEL).write_bytes(b"w")
    (outside / "folder").mkdir()
    (outside / "folder" / "more.txt").write_text("six\n")
    root = bot(tmp_path, {"requirements.txt": "-r linked.txt\n"})
    (root / "linked.txt").symlink_to(outside / "reqs.txt")
    assert refused(tmp_path, {}).startswith(
        f"requirements.txt:1: linked.txt is a link to {outside / 'reqs.txt'}, outside the bot folder;"
    )
    (root / "requirements.txt").write_text("-r sub/more.txt\n")
    (root / "sub").symlink_to(outside / "folder")
    assert refused(tmp_path, {}).startswith(
        f"requirements.txt:1: sub/more.txt is a link to {outside / 'folder' / 'more.txt'}, outside the bot folder;"
    )
    (root / "requirements.txt").write_text(f"./{WHEEL}\n")
    (root / WHEEL).symlink_to(outside / WHEEL)
    assert refused(tmp_path, {}) == (
        f"requirements.txt:1: ./{WHEEL} (a link to {outside / WHEEL}) is outside the bot folder; rasa-gpu builds only "
        "from files inside the bot: copy the archive into the bot"
    )
    os.remove(root / "requirements.txt")
    (root / "requirements.txt").symlink_to(outside / "reqs.txt")
    assert refused(tmp_path, {}) == (
        f"requirements.txt is a link to {outside / 'reqs.txt'}, outside the bot folder; rasa-gpu builds only from "
        "files inside the bot: copy the file into the bot instead of linking it"
    )


def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    root = bot(
        tmp_path, {"requirements.txt": "\ufeffrasa[spacy]==3.6.21\r\nsix \\\r\n  ==1.16.0\r\n".encode()}
    )
    found = read(root)
    assert found.rasa is not None and found.rasa.extras == ("spacy",)
    assert found.training.lines() == ("six   ==1.16.0",)


def test_a_file_that_is_not_utf8_is_one_line(tmp_path):
    assert refused(tmp_path, {"requirements.txt": b"six\n\xff\n"}) == (
        "requirements.txt is not UTF-8 text (byte b'\\xff' at offset 4); save it as UTF-8"
    )


def test_a_requirement_in_pyproject_that_is_an_option_is_one_line(tmp_path):
    with pytest.raises(RequirementsError, match="is not a requirement"):
        read(bot(tmp_path, {"pyproject.toml": '[project]\ndependencies = ["-e ./lib"]\n'}))
    with pytest.raises(SettingsError, match="invalid TOML"):
        read(bot(tmp_path / "b", {"pyproject.toml": "[project\n"}))


# ---- spaCy models ----------------------------------------------------------------------------------------------------

PIPELINE = (
    "recipe: default.v1\nlanguage: en\npipeline:\n  - name: SpacyNLP\n{model}  - name: SpacyTokenizer\n"
)


def spacy_bot(tmp_path: Path, model: str, requirements_txt: str) -> BotProject:
    files: dict[str, str | bytes] = {
        "config.yml": PIPELINE.format(model=model),
        "domain.yml": "version: '3.1'\n",
        "data/nlu.yml": "version: '3.1'\n",
        "requirements.txt": requirements_txt,
        f"models-spacy/{WHEEL}": b"w",
    }
    return BotProject.load(bot(tmp_path, files))


def test_a_spacy_model_must_come_from_a_requirement(tmp_path):
    project = spacy_bot(tmp_path, "    model: en_core_web_md\n", "rasa[spacy]==3.6.21\n")
    with pytest.raises(ProjectError) as info:
        spacy_models.needed(project, [], RELEASE, read(project.root))
    assert str(info.value) == (
        "config.yml: SpacyNLP needs the spaCy model en_core_web_md, and no requirement provides it; add to "
        "requirements.txt a wheel or archive in the bot folder (./en_core_web_md-….whl), its URL (en_core_web_md @ "
        "https://…) or its name on your index (en-core-web-md==…)"
    )


@pytest.mark.parametrize(
    "line",
    [
        f"./models-spacy/{WHEEL}",
        "en_core_web_sm @ https://example.org/en_core_web_sm-3.4.0.tar.gz",
        "https://example.org/x.tar.gz#egg=en_core_web_sm",
        "en-core-web-sm==3.4.0",
    ],
)
def test_a_spacy_model_is_provided_by_an_archive_a_url_or_an_index(tmp_path, line):
    project = spacy_bot(tmp_path, "    model: en_core_web_sm\n", f"rasa[spacy]==3.6.21\n{line}\n")
    assert spacy_models.needed(project, [], RELEASE, read(project.root)) == ("en_core_web_sm",)


def test_spacy_without_a_model_stops_as_rasa_3_would_and_a_set_counts(tmp_path):
    project = spacy_bot(tmp_path, "", f"./models-spacy/{WHEEL}\n")
    found = read(project.root)
    with pytest.raises(
        ProjectError, match=r"^config.yml: SpacyNLP names no model, and Rasa 3.6.21 loads none"
    ):
        spacy_models.needed(project, [], RELEASE, found)
    overrides = ["SpacyNLP.model=en_core_web_sm", "DIETClassifier.epochs=2"]
    assert spacy_models.needed(project, overrides, RELEASE, found) == ("en_core_web_sm",)
    assert (
        spacy_models.needed(project, [], load_matrix().get("2.8.34"), found) == ()
    )  # Rasa 2 falls back itself
    folder = spacy_bot(tmp_path / "path", "    model: ./spacy-model\n", "rasa[spacy]==3.6.21\n")
    assert (
        spacy_models.needed(folder, [], RELEASE, read(folder.root)) == ()
    )  # a folder in the bot: no package


# ---- what the image specs make of it ---------------------------------------------------------------------------------


def test_the_bot_stage_copies_the_archives_and_holds_the_bots_constraints():
    spec = ImageSpec(
        release=RELEASE,
        base_image="rasa-gpu/base:bullseye",
        cuda="none",
        extra_requirements=(f"en-core-web-sm @ file:///tmp/rasa-gpu/bot-files/models-spacy/{WHEEL}",),
        extra_constraints=("inflection==0.4.0",),
        bot_files=((f"models-spacy/{WHEEL}", b"wheel"),),
    )
    bot_stage = spec.dockerfile().split('Stage "bot"')[1]
    assert "COPY bot-files /tmp/rasa-gpu/bot-files" in bot_stage
    files = spec.bot_context_files()
    assert files[f"bot-files/models-spacy/{WHEEL}"] == b"wheel"
    assert files["bot-constraints.txt"] == b"inflection==0.4.0\nrasa==3.6.21\ntensorflow==2.12.0\n"
    # an archive's content is in the tag: a changed model is a new image, an unchanged one the same
    assert spec.tag() != replace(spec, bot_files=((f"models-spacy/{WHEEL}", b"other"),)).tag()
    assert spec.tag() == replace(spec).tag()
    assert (
        spec.rasa_tag()
        == ImageSpec(release=RELEASE, base_image="rasa-gpu/base:bullseye", cuda="none").rasa_tag()
    )
    plain = ImageSpec(
        release=RELEASE, base_image="rasa-gpu/base:bullseye", cuda="none", extra_requirements=("six",)
    )
    assert "bot-files" not in plain.dockerfile()


def test_the_action_servers_image_takes_the_bots_rasa_sdk_pin_constraints_and_archives():
    actions = ActionsImageSpec(
        RELEASE,
        "rasa-gpu/base:bullseye",
        ("humanize==4.9.0", "tiny @ file:///tmp/rasa-gpu/bot-files/wheels/tiny-1.0-py3-none-any.whl"),
        constraints=("humanize<5",),
        files=(("wheels/tiny-1.0-py3-none-any.whl", b"t"),),
        rasa_sdk=('rasa-sdk==3.6.2 ; python_version >= "3.8"',),
    )
    text = actions.dockerfile()
    assert "install 'rasa-sdk==3.6.2 ; python_version >= \"3.8\"'" in text
    assert f'"rasa-sdk{RELEASE.rasa_sdk}"' not in text
    assert "COPY actions-requirements.txt actions-constraints.txt /usr/local/share/rasa-gpu/" in text
    assert "COPY bot-files /tmp/rasa-gpu/bot-files" in text
    assert "-c /usr/local/share/rasa-gpu/actions-constraints.txt" in text
    assert actions.context_files()["bot-files/wheels/tiny-1.0-py3-none-any.whl"] == b"t"
    assert f'"rasa-sdk{RELEASE.rasa_sdk}"' in ActionsImageSpec(RELEASE, "rasa-gpu/base:bullseye").dockerfile()


def test_an_index_with_a_login_in_the_file_reaches_pip_as_the_command_lines_does(tmp_path):
    from rasa_gpu.images import INDEX_LOGIN_ARG
    from rasa_gpu.resolve import image_spec

    project = spacy_bot(tmp_path, "    model: en_core_web_sm\n", f"-i https://deploy:s3cret@pypi.corp/simple\n"
                        f"./models-spacy/{WHEEL}\n")  # fmt: skip
    spec, _ = image_spec(project, Settings(), "cpu")
    assert spec.pip_index_url == "https://deploy:s3cret@pypi.corp/simple"
    assert spec.secret_args() == {INDEX_LOGIN_ARG: "deploy:s3cret"}
    assert spec.spacy_models == ("en_core_web_sm",)
    assert all(b"s3cret" not in data for data in spec.context_files().values())  # no layer, no Dockerfile


def test_the_cli_says_in_one_line_which_index_it_builds_from(tmp_path):
    from support import run_cli

    project = spacy_bot(
        tmp_path, "    model: en_core_web_sm\n", f"-i https://files.corp/simple\n./models-spacy/{WHEEL}\n"
    )
    result = run_cli("build", str(project.root), "--print", "--pip-index-url", "https://mirror.corp/simple")
    assert result.returncode == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: requirements.txt:1 names the index https://files.corp/simple, but --pip-index-url names "
        "https://mirror.corp/simple: building from https://mirror.corp/simple (the command line and the settings win "
        "over the bot's requirements)"
    ]
    assert "--index-url https://mirror.corp/simple" in result.stdout
