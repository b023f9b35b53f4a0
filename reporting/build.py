"""build_report: every section of the report from run folders, written as report.md,
report.html, report.json and figures/."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from data.cifar10 import resolve_source
from evaluation.scoring import evaluate_run
from reporting.analyses import ANALYSES, analysis_section
from reporting.comparisons import COMPARISONS, members
from reporting.pages import Missing, Section, Table, to_html, to_markdown
from reporting.run_records import RunRecord, distinct, load_run, run_numbers
from reporting.sections import (
    best_section,
    curve_section,
    curves_section,
    minutes_section,
    runs_section,
    study_section,
    summary_section,
)
from runs import WEIGHTS, RunError, atomic_write_text


def evaluate_main_run(main: RunRecord, data_dir: str | None, batch_size: int,
                      log: Callable[[str], None] | None = None) -> None:
    """evaluate.py's numbers for the main run when its JSON is absent but weights and data are
    there; otherwise the page says why they are missing, and log, where given, takes a warning
    line if evaluating failed."""
    if main.evaluation or not data_dir:
        return
    if not (main.folder / WEIGHTS["best"]).exists():
        main.evaluation_missing = f"{main.folder} has no {WEIGHTS['best']}"
        return
    try:
        main.evaluation = evaluate_run(str(main.folder), which="best", split="test",
                                       data_dir=data_dir, batch_size=batch_size)
    except Exception as error:  # the curves and tables do not need it; the page says why
        main.evaluation_missing = f"evaluate.py could not run: {type(error).__name__}: {error}"
        if log:
            log(f"warning: {main.evaluation_missing}")


def featured_run(arg: str | None, runs: list[RunRecord]) -> RunRecord:
    """The run whose weights the analyses use: the one named (one of the runs given, or another
    one, loaded), else the main run."""
    if arg is None:
        return runs[0]
    run = load_run(arg)
    given = next((r for r in runs if r.folder.resolve() == run.folder.resolve()), None)
    if given is not None:
        return given
    if not run.history:
        raise RunError(f"the featured run {run.folder} has no finished epoch in history.csv "
                       f"(train it first)")
    return run


def build_report(run_args: list[str], out: Path, *, featured: str | None = None,
                 data_dir: str | None = None, batch_size: int = 500,
                 analyses: bool = True, seeds: Path | None = None,
                 log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Write report.md, report.html, report.json and figures/ into out; return the pages' paths.

    The first run is the main run (Tasks I-IV); the others are recognised as study runs by their
    Config. The featured run (default: the main run) is the one whose best weights the analyses
    use (Tasks VI, VII and the explanations); the runs table shows it too. With seeds (a folder
    of study.py seeds runs), a section sets the minutes to accuracy of the main and featured
    runs beside those seeds', and another the accuracy at each budget of the budget-N folders
    beside it (reporting.curve). The CIFAR-10 copy is data's one rule, with each run's own copy
    as the one it trained on. log, where given, takes a warning line for each part that
    failed (and is listed as missing).
    """
    runs = distinct([load_run(arg) for arg in run_args])
    unfinished = [run for run in runs if not run.history]
    if runs[0] in unfinished:
        raise RunError(f"the main run {runs[0].folder} has no finished epoch in history.csv "
                       f"(train it first)")
    runs = [run for run in runs if run not in unfinished]
    main, star = runs[0], featured_run(featured, runs)
    shown = distinct(runs if any(run is star for run in runs) else [*runs, star])
    references = [main] if star is main else [main, star]
    analysis_data = resolve_source(data_dir, trained_on=star.config.data_dir)
    data_dir = resolve_source(data_dir, trained_on=main.config.data_dir)
    evaluate_main_run(main, data_dir, batch_size, log)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    sections = [runs_section(shown, unfinished, star), curves_section(main, figures),
                best_section(main), summary_section(main),
                *(study_section(comparison, runs, figures) for comparison in COMPARISONS),
                *([minutes_section(references, Path(seeds), figures),
                   curve_section(references, Path(seeds).parent, figures)] if seeds else []),
                *(analysis_section(analysis, star, figures, data_dir=analysis_data,
                                   skip=not analyses, log=log) for analysis in ANALYSES)]
    missing = [block for section in sections for block in section.blocks
               if isinstance(block, Missing)]
    if missing:
        sections.append(Section("Missing", [Table(["what", "why", "command"],
                                                  [[m.what, m.reason, m.command]
                                                   for m in missing])]))
    title = f"CIFAR-10 report (CS7011 PA2), main run {main.name}"
    if star is not main:
        title += f", analyses of {star.name}"
    pages = {"markdown": out / "report.md", "html": out / "report.html",
             "json": out / "report.json"}
    studies = {c.key: {variant.label: run.name for variant, run in members(c, runs)}
               for c in COMPARISONS}
    summary = {"main": main.name, "featured": star.name,
               "runs": [run_numbers(run) for run in shown], "studies": studies,
               "analyses": {s.title: s.numbers for s in sections if s.numbers},
               "missing": [m.what for m in missing]}
    atomic_write_text(pages["markdown"], to_markdown(title, sections, out))
    atomic_write_text(pages["html"], to_html(title, sections))
    atomic_write_text(pages["json"], json.dumps(summary, indent=2) + "\n")
    return pages
