"""Rasa's `data validate` findings placed in the bot's files as problem lines (output shaped as Rasa 3.6 prints it:
Python warnings from rasa.shared.utils.io.raise_warning, log lines, and a schema error with its own place)."""

from __future__ import annotations

from support import EXAMPLE_BOT, copy_bot

from rasa_gpu.project import BotProject
from rasa_gpu.validation import problems

OUTPUT = """\
2026-11-23 09:10:01 INFO     rasa.validator  - Validating intents...
/usr/local/lib/python3.9/dist-packages/rasa/shared/utils/io.py:99: UserWarning: The intent 'bot_challenge' is not used in any story or rule.
/usr/local/lib/python3.9/dist-packages/rasa/shared/utils/io.py:99: UserWarning: The action 'utter_nope' is used in the stories, but is not a valid utterance action. Please make sure the action is listed in your domain and there is a template defined with its name.
  More info at https://rasa.com/docs/rasa/actions#utterance-actions
/usr/local/lib/python3.9/dist-packages/rasa/core/tracker_store.py:1044: MovedIn20Warning: Deprecated API features detected!
/usr/local/lib/python3.9/dist-packages/pkg_resources/__init__.py:3117: DeprecationWarning: Deprecated call to `pkg_resources.declare_namespace('ruamel')`.
2026-11-23 09:10:02 WARNING  rasa.validator  - Story structure validation...
2026-11-23 09:10:02 ERROR    rasa.validator  - The intent 'nowhere_at_all' is broken.
"""


def test_findings_point_where_their_names_are_written(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    stories = bot / "data" / "stories.yml"
    stories.write_text(stories.read_text().replace("action: utter_greet", "action: utter_nope", 1))
    found = problems(OUTPUT, BotProject.load(bot))
    lines = [p.line_text() for p in found]
    domain_line = next(
        i for i, t in enumerate((bot / "domain.yml").read_text().splitlines(), 1) if "bot_challenge" in t
    )
    story_line = next(i for i, t in enumerate(stories.read_text().splitlines(), 1) if "utter_nope" in t)
    assert lines[0] == (
        f"warning: domain.yml:{domain_line}:5: The intent 'bot_challenge' is not used in any story or rule."
    )
    assert lines[1].startswith(f"warning: data/stories.yml:{story_line}:") and "utter_nope" in lines[1]
    assert (
        lines[2] == "error: domain.yml:1:1: The intent 'nowhere_at_all' is broken."
    )  # named nowhere: the domain
    # Info lines, "More info at", "Story structure validation" and libraries' deprecation notices are not findings.
    assert len(found) == 3


def test_a_schema_error_keeps_its_own_place(tmp_path):
    bot = copy_bot(EXAMPLE_BOT, tmp_path / "bot", owner=None)
    output = (
        "YamlValidationException: Failed to validate 'domain.yml'. Please make sure the file is correct and all "
        "mandatory parameters are specified. Here are the errors found during validation:\n"
        "  in /bot/domain.yml:18:\n"
        "      Value 'slots' is not a dict. Value path: '/slots'\x1b[0m\n"
    )
    [problem] = problems(output, BotProject.load(bot))
    assert problem.line_text() == "error: domain.yml:18:1: Value 'slots' is not a dict. Value path: '/slots'"
