"""The check of a new bot image whose pipeline loads spaCy models (SpacyNLP), before it is tagged.

Run by rasa-gpu in a throw-away container of the freshly built image (`python3 -c <this file> MODEL...`). It loads
each model as Rasa's SpacyNLP does (spacy.load, parser disabled) and compares the spaCy the model was made for with
the one installed, as Rasa 3.6 does. The last line it prints is a JSON report:
{"ok": true, "spacy": "3.4.4", "models": {"en_core_web_md": "3.4.1"}} or {"ok": false, "model": NAME, "error": "..."}.
"""

import json
import sys


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def main(names: list) -> dict:
    try:
        import spacy
        import spacy.util
    except Exception as exc:  # noqa: BLE001 - any failure to import is the answer
        return {"ok": False, "model": names[0], "error": f"spaCy does not import ({first_line(exc)})"}
    loaded = {}
    for name in names:
        try:
            nlp = spacy.load(name, disable=["parser"])
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "model": name, "error": first_line(exc)}
        wanted = nlp.meta.get("spacy_version") or ""
        if wanted and not spacy.util.is_compatible_version(spacy.about.__version__, wanted):
            return {
                "ok": False,
                "model": name,
                "error": f"it was made for spaCy {wanted}, the image has spaCy {spacy.about.__version__}",
            }
        loaded[name] = nlp.meta.get("version", "")
    return {"ok": True, "spacy": spacy.about.__version__, "models": loaded}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])), flush=True)
