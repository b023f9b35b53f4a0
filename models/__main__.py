"""Print the report's Task IV parameter table and write it as Markdown: `python -m models`.

    python -m models                        # the report's network; ./parameters.md
    python -m models --batchnorm all --out logs/tables
"""

from __future__ import annotations

import cli

cli.start_quietly()

from pathlib import Path  # noqa: E402

from cli.args import parser  # noqa: E402
from models.network import BATCHNORM_CHOICES, build_model  # noqa: E402
from models.summary import summary_text, write_summary  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, prog="python -m models")
    p.add_argument("--batchnorm", choices=BATCHNORM_CHOICES, default="output",
                   help="batch-norm placement of the network to describe (default: output, the "
                   "report's)")
    p.add_argument("--out", default=".", help="folder for parameters.md (default: the current "
                   "folder)")
    args = p.parse_args(argv)
    model = build_model(args.batchnorm)
    print(summary_text(model), end="")
    print(f"wrote {write_summary(model, Path(args.out))}")


if __name__ == "__main__":
    cli.main_with_errors(main)
