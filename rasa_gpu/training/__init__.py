"""Training a bot: a plan decided once (plan.py: whether, why, how, where, in which image), then carried out by one
run path (run.py) for `rasa-gpu train`, a queued job's node, watch's warm trainer and the benchmarks (timed.py).

Modules: options (what is asked, what came of it), inputs (the bot's files read once), state (last-train.json),
image (the image, asked read-only), plan, run (lock, sweep, workspace, history), container (the recipe and following
Rasa), publish (the model into models/), timed (measured trainings).
"""

from __future__ import annotations

from .container import training_container
from .options import Limits, TimedRun, TrainOptions, TrainResult
from .plan import TrainingPlan, make_plan
from .run import execute, sweep, train
from .state import STATE_FILE
from .timed import bot_session, timed_training

__all__ = [
    "STATE_FILE",
    "Limits",
    "TimedRun",
    "TrainOptions",
    "TrainResult",
    "TrainingPlan",
    "bot_session",
    "execute",
    "make_plan",
    "sweep",
    "timed_training",
    "train",
    "training_container",
]
