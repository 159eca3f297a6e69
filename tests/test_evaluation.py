"""The figures of a `rasa test` run, read from reports shaped as Rasa 3.6 writes them (scikit-learn's JSON
classification reports; story_report.json with conversation_accuracy)."""

from __future__ import annotations

import json

from rasa_gpu.evaluation import label, read_results


def _avg(f1: float) -> dict:
    return {"precision": f1, "recall": f1, "f1-score": f1, "support": 10}


def test_nlu_and_core_reports(tmp_path):
    (tmp_path / "intent_report.json").write_text(
        json.dumps(
            {
                "greet": {**_avg(1.0), "confused_with": {}},
                "goodbye": {**_avg(0.8), "confused_with": {"greet": 1}},
                "accuracy": 0.9,
                "macro avg": _avg(0.9),
                "weighted avg": _avg(0.875),
            }
        )
    )
    (tmp_path / "DIETClassifier_report.json").write_text(
        json.dumps({"gpu_model": _avg(0.5), "micro avg": _avg(0.5), "weighted avg": _avg(0.5)})
    )
    (tmp_path / "story_report.json").write_text(
        json.dumps(
            {
                "utter_greet": _avg(1.0),
                "accuracy": 0.95,
                "weighted avg": _avg(0.93),
                "conversation_accuracy": {"accuracy": 0.75, "correct": 3, "with_warnings": 0, "total": 4},
            }
        )
    )
    (tmp_path / "intent_errors.json").write_text("[]")  # not a report
    figures = read_results(tmp_path)
    assert figures == {
        "intent_f1": 0.875,
        "intent_accuracy": 0.9,
        "entity_f1": 0.5,
        "entity_f1[DIETClassifier]": 0.5,
        "story_accuracy": 0.75,
        "action_f1": 0.93,
    }
    assert (
        label("entity_f1[DIETClassifier]") == "entity F1 (DIETClassifier)"
        and label("intent_f1") == "intent F1"
    )


def test_missing_or_broken_reports_give_no_figure(tmp_path):
    assert read_results(tmp_path) == {}
    (tmp_path / "intent_report.json").write_text("{not json")
    (tmp_path / "story_report.json").write_text(json.dumps({"weighted avg": {"f1-score": "n/a"}}))
    assert read_results(tmp_path) == {}
