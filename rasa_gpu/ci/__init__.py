"""`rasa-gpu ci`: validate, train, test on a held-fixed test set, compare with a baseline and write a report that a
reviewer reads in ten seconds; exit non-zero when a rule fails. One command for a CI job, the same on a laptop.

Modules: testset (what is tested: the bot's own test files, or a held-out split of its NLU data and the training copy
without it), report (the figures, their deltas and the movers, as JSON and Markdown), rules (`--fail-on`), baseline
(what the report is compared with), templates (the GitHub and GitLab jobs), run (the steps, in order).
"""
