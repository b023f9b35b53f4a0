"""Explanations of a run's network, one method per subcommand, all with the same flags for the
run, its weights, the images and the output folder.

    python explain.py gradcam --run report                     # per-class sample, CONV4
    python explain.py gradcam --run report --indices 3,17 --target true --layer CONV3

Methods:
  gradcam   Grad-CAM (Selvaraju et al., ICCV 2017) and Guided Grad-CAM of a class at a conv or
            pool layer (analysis.gradcam): where the layer's features speak for the class, from
            the gradient of the class's score before the softmax. The images are a per-class
            sample of the first --images of --split (for each class its most confident correct
            image and its most confident mistake), or --indices, or with --first those first
            images themselves. Writes gradcam_LAYER.png (a row per image: the image, the map
            over it, the Guided Grad-CAM map) and gradcam_LAYER_maps.npz (the raw maps: cam at
            the layer's resolution after the ReLU, with images, targets, labels, predictions).
  activation-max
            what a unit wants: the input that maximizes each chosen channel of --layer (Erhan et
            al. 2009; Olah et al., Distill 2017; analysis.activation_max) beside its top-k real
            patches. Writes actmax_LAYER.png, .npz (images, traces) and .json.
  sanity    the cascading randomization check (Adebayo et al., NeurIPS 2018; analysis.sanity):
            re-initialize the layers from the top, one more at a time, and compare each method's
            maps with the trained network's (Spearman rank correlation, SSIM) on the first
            --images images. Writes sanity_LAYER.json, sanity_LAYER.png (methods x stages) and
            sanity_LAYER_curve.png.

Writes into --out (default: the run's figures/).
"""


from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import cli
from analysis.choices import JITTER, OBJECTIVES, SANITY_IMAGES, SANITY_METHODS, STEPS
from cli import args as flags


def add_gradcam(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layer", default="CONV4", help="conv or pool layer (default: CONV4)")
    p.add_argument("--target", default="predicted",
                   help="the class each map explains: predicted, true, or a class number or "
                        "name for every image (default: predicted)")
    p.add_argument("--indices", type=flags.number_list("image indices"),
                   help="images to explain, by index into the split, e.g. 3,17 (default: a "
                        "per-class sample)")
    p.add_argument("--first", action="store_true",
                   help="explain the first --images images instead of a per-class sample")


def run_gradcam(args: argparse.Namespace) -> list[Path]:
    from analysis.gradcam_figures import gradcam_figures

    return gradcam_figures(flags.run_images(args), flags.output_folder(args), layer=args.layer,
                           target=args.target, indices=args.indices, per_class=not args.first,
                           progress=True)


def add_activation_max(p: argparse.ArgumentParser) -> None:
    flags.add_neuron_arguments(p, what="visualize")
    p.add_argument("--steps", type=flags.at_least(0), default=STEPS,
                   help=f"gradient-ascent steps (default: {STEPS})")
    p.add_argument("--objective", choices=OBJECTIVES, default="mean",
                   help="the channel's mean over its map, or its centre unit (default: mean)")
    p.add_argument("--jitter", type=flags.at_least(0), default=JITTER,
                   help=f"random shift per step, in pixels (default: {JITTER})")
    p.add_argument("--seed", type=flags.at_least(0), default=0,
                   help="start image and shifts (default: 0)")


def run_activation_max(args: argparse.Namespace) -> list[Path]:
    from analysis.activation_max import Ascent
    from analysis.activation_max_figures import activation_max_figures

    ascent = Ascent(steps=args.steps, objective=args.objective, jitter=args.jitter,
                    seed=args.seed)
    return activation_max_figures(flags.run_images(args), flags.output_folder(args),
                                  flags.neuron_query(args), ascent=ascent, progress=True,
                                  log=print)


def add_sanity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layer", default="CONV4", help="Grad-CAM's layer (default: CONV4)")
    p.add_argument("--target", default="predicted",
                   help="the class explained: predicted, true, or a class (default: predicted)")
    p.add_argument("--methods", default=",".join(SANITY_METHODS),
                   help=f"comma-separated (default: {','.join(SANITY_METHODS)})")
    p.add_argument("--example", type=flags.at_least(0), default=0,
                   help="the image the stage figure shows, of --images (default: 0)")
    p.add_argument("--seed", type=flags.at_least(0), default=0,
                   help="re-initialization seed (default: 0)")


def run_sanity(args: argparse.Namespace) -> list[Path]:
    from analysis.sanity_figures import sanity_figures

    return sanity_figures(flags.run_images(args), flags.output_folder(args), layer=args.layer,
                          target=args.target, methods=args.methods.split(","),
                          example=args.example, seed=args.seed, progress=True)


# Each method: a one-line help, a function adding its own flags, and a function running it.
METHODS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                         Callable[[argparse.Namespace], list[Path]]]] = {
    "gradcam": ("Grad-CAM and Guided Grad-CAM of a class", add_gradcam, run_gradcam),
    "activation-max": ("what a unit wants: activation maximization", add_activation_max,
                       run_activation_max),
    "sanity": ("the cascading randomization sanity check", add_sanity, run_sanity),
}
# The number of images a method takes by default, where not all of the split.
DEFAULT_IMAGES = {"sanity": SANITY_IMAGES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.parser(__doc__)
    methods = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    for name, (summary, add_flags, _) in METHODS.items():
        sub = methods.add_parser(name, help=summary, description=summary,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        flags.add_run_arguments(sub, images=DEFAULT_IMAGES.get(name), what="figures and maps")
        add_flags(sub)
    given = sys.argv[1:] if argv is None else argv
    if given and given[0].startswith("--") and given[0] not in ("--help", "-h"):
        p.error(f"name the method first: explain.py METHOD {given[0]} ... (METHOD: "
                f"{', '.join(METHODS)})")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    cli.start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow
    flags.print_written(METHODS[args.method][2](args))


if __name__ == "__main__":
    cli.main_with_errors(main)
