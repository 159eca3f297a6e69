"""Draw chart.png from a rasa-gpu benchmark's report.json (run inside the Rasa image, which has matplotlib)."""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

folder = Path(sys.argv[1])
report = json.loads((folder / "report.json").read_text())
devices = [(name, d) for name, d in report["devices"].items() if d["runs"]]
components = []
for _, d in devices:
    components += [c for c in d["components"] if c not in components]
fig, ax = plt.subplots(figsize=(11, 1.8 + 0.9 * max(1, len(devices))))
labels = []
for row, (name, d) in enumerate(devices):
    left = 0.0
    for component in components:
        width = d["components"].get(component, {}).get("median", 0.0)
        ax.barh(row, width, left=left, label=component if row == 0 else None)
        left += width
    other = d["total"]["median"] - left
    if other > 0:
        ax.barh(
            row,
            other,
            left=left,
            color="lightgrey",
            label="other (start-up, loading, saving)" if row == 0 else None,
        )
    cost = d["cost_per_training"]
    labels.append(f"{name.upper()}\n{d['total']['median']:.0f} s, ${cost:.4f}")
ax.set_yticks(range(len(devices)), labels)
ax.set_xlabel("median training time (s)")
missing = [n.upper() for n, d in report["devices"].items() if not d["runs"]]
title = f"{Path(report['bot']).name}: Rasa {report['rasa_version']}"
if report.get("speedup"):
    title += f", GPU speedup {report['speedup']:.2f}x"
if missing:
    title += f" ({', '.join(missing)} not measured)"
ax.set_title(title)
ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
fig.tight_layout()
fig.savefig(folder / "chart.png", dpi=100)
print("chart.png written")
