"""Rebuild the report's figures and pages from run folders alone.

    python report.py logs/reference/paper logs/reference/study/* logs/reference/optimizers/* \\
        --featured logs/reference/tuned --data-dir ../shared/data/cifar-10-jpeg

The first RUN is the main run: its learning curves (Task I), its best-on-validation test accuracy
and settings (Tasks II/III) and its network's parameter table (Task IV). The analyses (Task VI
filters, Task VII neurons and guided backpropagation, and the explanations of explain.py:
Grad-CAM and Guided Grad-CAM, activation maximization and the sanity check) are of the
--featured run's best weights, by default the main run's; the runs table shows it too. The
other runs are recognised by their config.json as runs of the studies study.py trains
(training/studies.py): the batch-norm and dropout runs make the Task V figures (BN, BN without
dropouts, NO BN, NO BN without dropouts, and BN everywhere when given), the optimizer runs the
optimizer figures.

OUT (default: MAIN_RUN/report) gets report.html (self-contained, figures embedded), report.md
(relative image links), figures/ (PNG, and PDF for the plots) and report.json (every number in the
tables). With --seeds (by default the published budget-20 seeds, where they exist), a section
sets the minutes to 85, 87 and 88% test accuracy of the main and featured runs beside the seeds'.
Whatever cannot be made (no weights, no data, an analysis that fails) is listed as missing with
the command that would make it. Rebuilding gives the same pages and plot files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cli
import runs
from cli.args import at_least, parser
from reporting.seed_summary import BUDGET_SEEDS, report_seeds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folders (names under logs/ or paths); the first is the main run")
    p.add_argument("--featured", metavar="RUN",
                   help="the run whose best weights the analyses use (default: the main run)")
    p.add_argument("--out", help="folder for the pages and figures (default: MAIN_RUN/report)")
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz for evaluate.py's numbers and "
                   "the analyses (default: $CIFAR10_DIR, else the copy the main run trained on; "
                   "without one, they are listed as missing)")
    p.add_argument("--batch-size", type=at_least(1), default=500,
                   help="batch size of evaluation (default: %(default)s)")
    p.add_argument("--seeds", metavar="DIR",
                   help="a study.py seeds folder (seed-N runs) whose minutes to accuracy the "
                   "report sets beside the main and featured runs' (default: "
                   f"{BUDGET_SEEDS.relative_to(runs.LOGS.parent)} where it exists)")
    p.add_argument("--no-analyses", action="store_true",
                   help="skip the analyses (Tasks VI/VII and the explanations)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cli.start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow loads
    out = Path(args.out) if args.out else runs.find_run(args.runs[0]) / "report"
    from reporting.build import build_report  # Keras and matplotlib: after the flags

    pages = build_report(args.runs, out, featured=args.featured, data_dir=args.data_dir,
                         batch_size=args.batch_size, analyses=not args.no_analyses,
                         seeds=report_seeds(args.seeds),
                         log=lambda line: print(line, file=sys.stderr))
    for kind in ("html", "markdown"):
        print(f"{kind}: {pages[kind]}")
    missing = json.loads(pages["json"].read_text())["missing"]
    if missing:
        print(f"missing ({len(missing)}): {'; '.join(missing)} (the pages say how to make each)",
              file=sys.stderr)


if __name__ == "__main__":
    cli.main_with_errors(main)
