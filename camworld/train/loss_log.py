"""The training log: one JSON object per optimiser step in `loss.jsonl`, and its loss curve as `loss.png`."""

from __future__ import annotations

import json
import math
from pathlib import Path

from camworld.fileio import atomic_path


class LossLog:
    """Appends step records to `<run>/loss.jsonl`; on resume, `truncate(step)` drops records after the checkpoint
    so the log again matches the weights (steps run after the last checkpoint of a killed run are redone)."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "loss.jsonl"

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a killed run
        return records

    def truncate(self, step: int) -> None:
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def plot(self, path: str | Path | None = None) -> Path:
        """Loss against step (raw and a running mean over ~2% of the run) on a log axis, written atomically."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path) if path else self.path.with_suffix(".png")
        records = [r for r in self.read() if math.isfinite(r.get("loss", math.nan))]
        steps = [r["step"] for r in records]
        losses = [r["loss"] for r in records]
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        ax.plot(steps, losses, lw=0.6, alpha=0.4, label="loss")
        window = max(1, len(losses) // 50)
        if window > 1:
            smooth = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
                      for i in range(len(losses))]
            ax.plot(steps, smooth, lw=1.5, label=f"mean of {window}")
        ax.set_xlabel("step")
        ax.set_ylabel("flow-matching loss")
        if losses and min(losses) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return path
