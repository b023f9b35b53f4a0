"""The filters of a conv layer as images (the report's Task VI), with each filter's mean
activation.

CONV1's 64 filters (3x3x3) are drawn as 3x3 RGB images in an 8x8 grid, numbered by channel
(0-63, the numbers neurons.py and guided_backprop.py use), as Krizhevsky et al. (NIPS 2012,
Fig. 3) show first-layer filters. Two versions: raw (one common scale, zero = grey, so the
filters' relative strength shows) and normalized (each filter stretched to its own range).
Each filter's mean activation on the first --images images is written under it and plotted
beside the grid: dead filters (never fire) and dominant ones stand out. --layer draws a deeper
layer's filters channel by channel (a mosaic of 3x3 kernels per filter, one per input channel,
grey-scale). The method is analysis.filters.

    python visualize_filters.py --run report --data-dir ../shared/data/cifar-10-jpeg
    python visualize_filters.py --run report --layer CONV2 --no-activations

Writes into --out (default: the run's figures/): filters_L_raw.png, filters_L_normalized.png
and filters_L.csv (filter, mean activation, share of units that fire, weight norm).
"""

from __future__ import annotations

import argparse

import cli
from analysis.choices import FILTER_IMAGES
from cli import args as flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.parser(__doc__)
    flags.add_run_arguments(p, images=FILTER_IMAGES, what="figures and table")
    p.add_argument("--layer", default="CONV1", help="conv layer (default: CONV1)")
    p.add_argument("--no-activations", dest="activations", action="store_false",
                   help="draw the filters only, without feeding images through the network")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    cli.start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow
    from analysis.filters import filter_figures

    paths = filter_figures(flags.run_images(args), flags.output_folder(args), layer=args.layer,
                           activations=args.activations, progress=True)
    flags.print_written(paths)


if __name__ == "__main__":
    cli.main_with_errors(main)
