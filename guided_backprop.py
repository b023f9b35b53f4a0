"""Guided backpropagation for neurons of a conv layer (the report's Task VII, second part).

    python guided_backprop.py --run report                       # 10 interesting CONV4 neurons
    python guided_backprop.py --run report --neurons 3,17 --method all
    python guided_backprop.py --run report --method saliency --smoothgrad 50

For each chosen neuron (a channel of --layer, default the last conv layer CONV4) the script finds
the images that excite it most (top-k over the first --images of --split, as neurons.py does)
and computes, for the maximal unit of the neuron in each image, the map of its gradient with
respect to the input pixels under one of three ReLU rules (analysis.guided): guided
backpropagation (Springenberg et al., ICLR 2015 workshop), the plain gradient or saliency
(Simonyan et al., 2014) and the deconvnet (Zeiler & Fergus, ECCV 2014). The neurons default to
the --count whose top-k images are most often of one class (analysis.selection). The figures
are analysis.guided_figures. --smoothgrad N averages each map over N copies of its image with
Gaussian noise of --noise times the pixel range added (SmoothGrad, Smilkov et al. 2017; the
paper's defaults are N = 50 and 0.15; analysis.smoothgrad), the noise drawn from --seed.

Writes into --out (default: the run's figures/): METHOD_LAYER.png (per neuron: its top image
with the unit's receptive field outlined, the map, the image patch and the map cropped to the
field), METHOD_LAYER_topK.png (per neuron: its top-k patches above their maps), with --method all
also compare_LAYER.png (the three methods side by side), and METHOD_LAYER_maps.npz (the raw maps,
one array per method, with the images, units and receptive-field boxes, for other tools). With
--smoothgrad every name starts with smoothgrad_ and the npz also holds the SmoothGrad settings.
"""

from __future__ import annotations

import argparse

import cli
from analysis.choices import GRADIENT_METHODS, RENDERS
from analysis.smoothgrad import NOISE, SAMPLES
from cli import args as flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.parser(__doc__)
    flags.add_run_arguments(p, what="figures and maps")
    flags.add_neuron_arguments(p, what="explain")
    p.add_argument("--method", choices=(*GRADIENT_METHODS, "all"), default="guided",
                   help="ReLU rule, or all three side by side (default: guided)")
    p.add_argument("--render", choices=RENDERS, default="standard",
                   help="map rendering: signed (centred at grey), abs, or standard (each "
                        "method's usual one)")
    p.add_argument("--smoothgrad", type=flags.at_least(0), default=0, metavar="N",
                   help=f"SmoothGrad: average each map over N noisy copies of its image (0: off, "
                        f"the default; the paper uses {SAMPLES})")
    p.add_argument("--noise", type=float, default=NOISE, metavar="LEVEL",
                   help=f"SmoothGrad's noise level, a fraction of the pixel range (default: "
                        f"{NOISE})")
    p.add_argument("--seed", type=flags.at_least(0), default=0,
                   help="SmoothGrad's noise seed (default: 0)")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    cli.start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow
    from analysis.guided_figures import guided_figures
    from analysis.smoothgrad import Smoothing

    smoothing = Smoothing(args.smoothgrad, args.noise, args.seed) if args.smoothgrad else None
    paths = guided_figures(flags.run_images(args), flags.output_folder(args),
                           flags.neuron_query(args), method=args.method, render=args.render,
                           smoothing=smoothing, progress=True, log=print)
    flags.print_written(paths)


if __name__ == "__main__":
    cli.main_with_errors(main)
