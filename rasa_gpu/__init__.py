"""rasa-gpu: train Rasa bots on an NVIDIA GPU inside Docker."""

__version__ = "0.1.0"
