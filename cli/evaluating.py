"""evaluate.py's command line: its flags, the Task IV table (--summary) and the scoring of a
run's weights, the grader's report printed first (so that a failed write keeps the numbers), then
the JSON and the confusion matrix written and their paths printed. study.py scores each seed with
the same command (evaluate_main), as it trains each with train.py's (cli.training)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.args import add_weights_and_split_arguments, parser
from cli.errors import UsageError
from cli.quiet import start_quietly
from evaluation import TTA_CHOICES


def make_parser(doc: str | None = None, prog: str = "evaluate.py") -> argparse.ArgumentParser:
    """evaluate.py's flags, doc its --help."""
    p = parser(doc, prog=prog)
    p.add_argument("target", nargs="?", metavar="RUN_OR_WEIGHTS",
                   help="run folder (a name under logs/ or a path) or a .weights.h5 file")
    p.add_argument("--run", help="the same as RUN_OR_WEIGHTS, named as in the other scripts")
    add_weights_and_split_arguments(p, batch_size=500)
    p.add_argument("--tta", choices=TTA_CHOICES,
                   help="also report test-time augmentation (mirror images)")
    p.add_argument("--out", help="folder for the JSON and PNG (default: RUN/eval); for --summary, "
                   "the folder for parameters.md (default: the current folder)")
    p.add_argument("--json", help="path of the JSON file (the PNG is written beside it)")
    p.add_argument("--summary", action="store_true",
                   help="print the report's Task IV parameter table (a run's variant if one is "
                   "named); no weights")
    return p


def parse_args(argv: list[str], doc: str | None = None,
               prog: str = "evaluate.py") -> argparse.Namespace:
    """The flags, with the run named once (RUN_OR_WEIGHTS or --run) as args.target."""
    p = make_parser(doc, prog)
    args = p.parse_args(argv)
    if args.run and args.target and args.run != args.target:
        p.error("name the run once: as RUN_OR_WEIGHTS or as --run")
    args.target = args.target or args.run
    if args.out and args.json:
        p.error("pass --out or --json, not both")
    return args


def summarize(target: str | None, out: str | None) -> None:
    """The Task IV table of the target's network variant, built in float32: no weights needed."""
    from evaluation.scoring import run_config
    from models.network import build_from_config
    from models.summary import summary_text, write_summary
    from runs.weights import dtype_policy

    with dtype_policy("float32"):
        model = build_from_config(run_config(target))
    print(summary_text(model), end="")
    print(f"wrote {write_summary(model, Path(out or '.'))}")


def evaluate_and_report(target: str, *, which: str = "best", split: str = "test",
                        data_dir: str | None = None, batch_size: int = 500,
                        tta: str | None = None, json_path: Path | None = None,
                        out: str | None = None) -> None:
    """Score target (a run folder or a weights file) as evaluation.scoring.evaluate_run does;
    the files go to json_path, else into out, else into the run's eval/
    (evaluation.present.default_json_path)."""
    # Keras: after the script's flags are parsed.
    from evaluation.present import default_json_path, format_report, write_results
    from evaluation.scoring import evaluate_run

    result = evaluate_run(target, which=which, split=split, data_dir=data_dir,
                          batch_size=batch_size, tta=tta)
    json_path = json_path or default_json_path(result, out)
    print(format_report(result), flush=True)
    paths = write_results(result, json_path)
    print("", *(f"wrote {path}" for path in paths), sep="\n")


def evaluate_main(argv: list[str], *, doc: str | None = None, prog: str = "evaluate.py") -> None:
    """evaluate.py with the arguments argv (prog is how it was called)."""
    args = parse_args(argv, doc, prog)
    start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow loads
    if args.summary:
        summarize(args.target, args.out)
        return
    if args.target is None:
        raise UsageError("name a run folder or a weights file to evaluate (or pass --summary); "
                         "see --help")
    evaluate_and_report(args.target, which=args.which, split=args.split,
                        data_dir=args.data_dir, batch_size=args.batch_size, tta=args.tta,
                        json_path=Path(args.json) if args.json else None, out=args.out)
