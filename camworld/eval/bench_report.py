"""What `camworld bench` writes: results.json, results.md (one row per system × split, the estimator floor
included), drift.png (PSNR against the true render per window, per system), trajectories.png (top-down x–z of the
commanded and the estimated paths, one panel per scene) and scenes/<id>.npz (each scene's c2w, K and revisit
pairs, so that the numbers can be reproduced). Every file is written atomically."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from camworld.eval.bench import FLOOR, ROWS, TRACK_INTERVAL, BenchResult
from camworld.fileio import atomic_path

_STYLE = {"model": "C0", "repeat_first_frame": "C1", "no_camera": "C2", FLOOR: "C3"}


def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _schedule(settings: dict) -> str:
    """"steps 8" or "σ [1.0, ...]", with the ar stagger when one was set."""
    text = f"σ {list(settings['sigmas'])}" if settings.get("sigmas") else f"steps {settings['steps']}"
    return text if settings.get("interval_k") is None else f"{text}, interval_k {settings['interval_k']}"


def markdown_table(result: BenchResult) -> str:
    """The summary as markdown: settings line, the table, throughput / memory and what the rows mean."""
    s = result.settings
    lines = [
        f"Scenes per split: {s['scenes']}; frames: {s['num_frames_used']} at {s['fps']} fps "
        f"({(s['num_frames_used'] - 1) / s['fps']:g} s); {_schedule(s)}, cfg {s['cfg_scale']}, "
        f"flow shift {s['flow_shift']}, mode {s['mode']}, refiner {'on' if result.cost.get('refined') else 'off'}, "
        f"seed {s['seed']}; poses every {TRACK_INTERVAL}th frame; weights {s['weights'] or '(object)'}.",
        "",
        "| split | system | RotErr (°) ↓ | TransErr ↓ | CamMC ↓ | revisit PSNR ↑ | revisit SSIM ↑ | pairs | "
        "PSNR first / last window ↑ | ΔPSNR ↓ | SSIM first / last ↑ | ΔSSIM ↓ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for split, rows in result.summary.items():
        for name in ROWS:
            e = rows[name]
            windows = e.get("window_psnr")
            drift = (f"{_fmt(windows[0])} / {_fmt(windows[-1])} | {_fmt(e['drop_psnr'])} | "
                     f"{_fmt(e['window_ssim'][0], 3)} / {_fmt(e['window_ssim'][-1], 3)} | {_fmt(e['drop_ssim'], 3)}"
                     if windows else "– | – | – | –")
            lines.append(f"| {split} | {name} | {_fmt(e['RotErr'])} | {_fmt(e['TransErr'], 3)} | "
                         f"{_fmt(e['CamMC'], 3)} | {_fmt(e['revisit_psnr'])} | {_fmt(e['revisit_ssim'], 3)} | "
                         f"{e['revisit_pairs']} | {drift} |")
    c = result.cost
    lines += [
        "",
        f"Throughput (model, `generate` wall time, {c['device']}, {c['torch_threads']} torch threads): "
        f"{_fmt(c['videos_per_hour'])} videos/hour ({c['videos']} videos in {c['model_generate_s']:.1f} s).",
        f"Memory: peak RSS of the process {c['peak_rss_gib']:.2f} GiB (rise over the start of the run "
        f"{_fmt(c['peak_rss_rise_gib'])} GiB; resource.getrusage ru_maxrss)"
        + (f"; CUDA max allocated {c['cuda_max_allocated_gib']:.2f} GiB." if "cuda_max_allocated_gib" in c else "."),
        "",
    ]
    lines += [f"- {key}: {text}" for key, text in result.notes.items()]
    limits = [x["id"] for x in result.scenes if x["above_angular_limit"]]
    if limits:
        lines.append(f"- above SANA-WM's 12°/s angular limit (labelled): {', '.join(limits)}")
    return "\n".join(lines) + "\n"


def _plot_drift(result: BenchResult, path: Path) -> None:
    import matplotlib.pyplot as plt

    splits = list(result.summary)
    fig, axes = plt.subplots(1, len(splits), figsize=(4.6 * len(splits), 3.4), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        for name in ROWS:
            values = result.summary[split][name].get("window_psnr")
            if values:
                ax.plot(np.arange(len(values)), values, marker="o", color=_STYLE[name], label=name)
        ax.set_xlabel("window index (10 s each; halves for clips < 20 s)")
        ax.set_ylabel("PSNR vs true render (dB)")
        ax.set_title(f"{split}: drift")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> None:
    """Lay out, write atomically at 120 dpi, and free the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _plot_tracks(result: BenchResult, path: Path) -> None:
    import matplotlib.pyplot as plt

    ids = list(result.tracks)
    cols = min(4, len(ids))
    rows = -(-len(ids) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(ids):]:
        ax.set_axis_off()
    for ax, scene_id in zip(axes.ravel(), ids, strict=False):
        track = result.tracks[scene_id]
        commanded = np.array(track["commanded"])
        ax.plot(commanded[:, 0], commanded[:, 1], color="k", lw=2.2, label="commanded")
        for name in ROWS:
            xz = np.array(track[name])
            ax.plot(xz[:, 0], xz[:, 1], color=_STYLE[name], lw=1, label=f"estimated: {name}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(scene_id, fontsize=8)
        ax.set_xlabel("x (m)", fontsize=7)
        ax.set_ylabel("z (m, forward)", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)
    _save_figure(fig, path)


def write_report(result: BenchResult, out_dir: str | Path) -> list[Path]:
    """Write every output into `out_dir`; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    paths = [out_dir / "results.json", out_dir / "results.md", out_dir / "drift.png", out_dir / "trajectories.png"]
    payload = {f.name: getattr(result, f.name) for f in fields(result) if f.name != "scene_poses"}
    with atomic_path(paths[0]) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(f"# camworld bench\n\n{markdown_table(result)}")
    _plot_drift(result, paths[2])
    _plot_tracks(result, paths[3])
    for scene_id, (c2w, K, pairs) in result.scene_poses.items():
        paths.append(out_dir / "scenes" / f"{scene_id}.npz")
        with atomic_path(paths[-1]) as tmp:
            np.savez(tmp, c2w=c2w, K=K, revisit_pairs=pairs)
    return paths
