"""Print the requirements of Rasa Pro's `nlu` extra (DIET, TED, ResponseSelector: TensorFlow and its friends), read
from the installed rasa-pro's own metadata, without the three that Rasa Open Source also left to extras: MITIE (no
wheel: it needs a C++ compiler and minutes to build), spaCy and jieba. A bot that uses them lists them in its
requirements.txt (the bot stage installs them). Run inside the image by its build, after `pip install rasa-pro`."""

import importlib.metadata

try:
    from packaging.requirements import Requirement
except ImportError:  # pip's own copy
    from pip._vendor.packaging.requirements import Requirement

LEFT_TO_THE_BOT = {"mitie", "spacy", "jieba"}

for line in importlib.metadata.requires("rasa-pro") or []:
    requirement = Requirement(line)
    if requirement.marker is None or not requirement.marker.evaluate({"extra": "nlu"}):
        continue  # not in the nlu extra, or not for this Python and platform
    if requirement.name.lower() in LEFT_TO_THE_BOT:
        continue
    requirement.marker = None
    print(requirement)
