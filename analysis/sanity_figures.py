"""Figures and numbers of the cascading randomization check (analysis.sanity; Adebayo et al.,
"Sanity Checks for Saliency Maps", NeurIPS 2018) on a run's network.

For the Grad-CAM layer L, sanity_figures writes:

  sanity_L.json        per method, the stages ("trained" first) and at each the mean over the
                       images of the rank correlation with the trained network's maps (1.0 at
                       "trained"), the per-image values, how many were undefined (a constant
                       map), and the same for SSIM; with the images' classes and the targets
  sanity_L.png         as Adebayo et al.'s Fig. 2: a row per method, a column per stage, the
                       maps of one example image, each with its method's mean rank correlation
                       at that stage under it
  sanity_L_curve.png   the mean rank correlation against the stage, a line per method, with a
                       band of one standard deviation over the images
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analysis import AnalysisError
from analysis.figures import DPI, Cell, grid_figure, save_figure
from analysis.gradcam import check_target, choose_targets, class_name, predict, upsample
from analysis.gradcam_figures import overlay
from analysis.guided import render_map
from analysis.inputs import RunImages, load_inputs
from analysis.sanity import (
    METHODS,
    SPATIAL,
    TRAINED,
    SanityCheck,
    cascading_randomization,
    check_methods,
)
from runs import atomic_write_text

COMPARISON = ("Spearman rank correlation of the map magnitudes (largest absolute value over the "
              "colour channels; Grad-CAM at its layer's resolution) with the trained network's "
              "map of the same image, per image, then the mean over the images where defined; "
              "SSIM of the maps scaled to their maxima, 7x7 window")


def _mean(values: np.ndarray) -> float | None:
    defined = values[np.isfinite(values)]
    return round(float(defined.mean()), 6) if defined.size else None


def _values(values: np.ndarray) -> list[float | None]:
    return [round(float(v), 6) if np.isfinite(v) else None for v in values]


def summary(check: SanityCheck) -> dict:
    """Per method, the stages and the mean and per-image agreement at each (JSON-ready: None
    for an undefined value)."""
    names = [s.name for s in check.stages]
    return {m: {"stages": names,
                "rank_correlation": [_mean(row) for row in check.rank[m]],
                "rank_correlation_per_image": [_values(row) for row in check.rank[m]],
                "undefined": [int((~np.isfinite(row)).sum()) for row in check.rank[m]],
                "ssim": [_mean(row) for row in check.ssim[m]],
                "ssim_per_image": [_values(row) for row in check.ssim[m]]}
            for m in check.rank}


def stage_figure(path: Path, check: SanityCheck, image: np.ndarray, example: int,
                 title: str) -> Path:
    """A row per method: the example image, then its map at every stage, each with its
    method's mean rank correlation at that stage under it."""
    rows = []
    for m in check.maps:
        means = [_mean(row) for row in check.rank[m]]
        row = [Cell(image, "image" if not rows else "")]
        for s, (stage, mean) in enumerate(zip(check.stages, means, strict=True)):
            magnitude = check.maps[m][s, example]
            shown = (overlay(image, upsample(magnitude[None], image.shape[:2])[0])
                     if m in SPATIAL else render_map(magnitude[..., None], "abs"))
            caption = "rho n/a" if mean is None else f"rho {mean:.2f}"
            row.append(Cell(shown, stage.name if not rows else "", caption))
        rows.append(row)
    return save_figure(grid_figure(rows, title=title, labels=list(check.maps)), path, dpi=DPI)


def curve_figure(path: Path, check: SanityCheck, title: str) -> Path:
    """The mean rank correlation at each stage, a line per method, +- one standard deviation
    over the images (where defined)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in check.stages]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=DPI)
    for m, values in check.rank.items():
        defined = np.where(np.isfinite(values), values, np.nan)
        counts = np.isfinite(values).sum(axis=1)
        mean = np.array([np.nanmean(r) if c else np.nan for r, c in zip(defined, counts,
                                                                         strict=True)])
        spread = np.array([np.nanstd(r) if c else np.nan for r, c in zip(defined, counts,
                                                                          strict=True)])
        (line,) = ax.plot(x, mean, marker="o", markersize=3, label=m)
        ax.fill_between(x, mean - spread, mean + spread, color=line.get_color(), alpha=0.15)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_xlabel("re-initialized from the top down to", fontsize=8)
    ax.set_ylabel("rank correlation with trained maps", fontsize=8)
    ax.set_ylim(-0.6, 1.05)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=DPI)


def sanity_figures(run_images: RunImages, out: Path, *, layer: str = "CONV4",
                   target: str | int = "predicted", methods: list[str] | None = None,
                   example: int = 0, seed: int = 0, progress: bool = False) -> list[Path]:
    """The cascading randomization check of the run's network on the images (the scripts take
    the first analysis.choices.SANITY_IMAGES), written into out; returns the paths. layer is
    Grad-CAM's; target the class each map explains (predicted, true, or one class by number or
    name); methods a subset of analysis.sanity.METHODS (None: all); example the image (of
    those) the stage figure shows; seed the re-initialization's."""
    methods = list(METHODS) if methods is None else methods
    check_methods(methods)
    if example < 0:
        raise AnalysisError(f"the example image must be one of the images, 0 or more, not "
                            f"{example}")
    out, split, batch_size = Path(out), run_images.split, run_images.batch_size
    inputs = load_inputs(run_images, check=lambda model: check_target(model, target))
    model, x, y = inputs.model, inputs.images, inputs.labels
    if example >= len(x):
        raise AnalysisError(f"the example image must be one of the {len(x)} images, 0 to "
                            f"{len(x) - 1}, not {example}")
    probabilities = predict(model, x, batch_size)
    targets = choose_targets(probabilities, y, target)
    check = cascading_randomization(model, x, targets, layer=layer, methods=methods, seed=seed,
                                    batch_size=batch_size, progress=progress)
    per_method = summary(check)
    record = {"run": str(run_images.run), "weights": run_images.which, "split": split,
              "layer": layer, "images": len(x), "labels": [int(v) for v in y],
              "predictions": [int(v) for v in probabilities.argmax(axis=1)],
              "target": str(target), "targets": [int(v) for v in targets], "seed": seed,
              "stages": [s.name for s in check.stages],
              "stage_layers": {s.name: list(s.layers) for s in check.stages},
              "comparison": COMPARISON, "methods": per_method}
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"sanity_{layer}.json"
    atomic_write_text(json_path, json.dumps(record, indent=1) + "\n")
    image = np.asarray(x[example]).astype(np.uint8)
    what = "predicted" if target == "predicted" else str(target)
    title = (f"Cascading randomization (Adebayo et al. 2018): maps of the {what} class's score "
             f"before the softmax (Grad-CAM at {layer})\nleft to right: trained, then layers "
             f"re-initialized from the top, cumulatively; image {example} of {split} (true "
             f"{class_name(int(y[example]))}, explained {class_name(int(targets[example]))})\n"
             f"under each map: the method's mean rank correlation with the trained maps over "
             f"{len(x)} images")
    paths = [json_path, stage_figure(out / f"sanity_{layer}.png", check, image, example, title)]
    paths.append(curve_figure(out / f"sanity_{layer}_curve.png", check,
                              f"Cascading randomization: {len(x)} {split} images, {TRAINED} "
                              f"-> all layers random"))
    return paths
