"""The report: run folders in, report.md, report.html, report.json and figures/ out.

run_records.py reads a run folder as the report sees it, comparisons.py recognises the study runs by
their Config (the studies are training.studies'), settings.py derives the Task III table from a
Config, plots.py draws, analyses.py calls the analysis package for Tasks VI and VII and the
explanations (of the featured run's weights), explanations.py reads the numbers those write
beside their figures (the sanity check's table), timing.py finds the minutes a run took to each
test accuracy, seed_summary.py summarizes a seeds study (study.py seeds) over its seeds, sections.py
assembles each section from page blocks (pages.py, which renders Markdown and HTML), and build.py
writes it all (`from reporting.build import build_report`). report.py is its command line.
This file imports nothing: study.py reads reporting.seed_summary without Keras or matplotlib.
"""
