"""The project's shape: scripts parse, call packages and print; packages never act on import."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPTS = sorted(p for p in ROOT.glob("*.py"))
TOOLS = sorted((ROOT / "tools").glob("*.py"))
SCRIPT_NAMES = {p.stem for p in SCRIPTS + TOOLS}


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


# The library: every package but cli (the command-line layer the scripts share). benchmarks
# times the scripts themselves, as a user runs them, so it alone starts one by name.
PACKAGES = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "cli")
LIBRARY = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("module", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_package_imports_the_command_line_layer(module):
    assert "cli" not in imported_modules(module)


@pytest.mark.parametrize("module", [p for p in LIBRARY if p.parent.name != "benchmarks"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_library_module_starts_a_process(module):
    # A study runs train.py's command through cli.training.run_in_child, called by study.py;
    # the library only plans (training.study_plan), so it never names a script to run.
    source = module.read_text()
    assert not imported_modules(module) & {"subprocess", "multiprocessing"}
    assert "sys.executable" not in source


def prints(path) -> bool:
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id == "print" for node in ast.walk(ast.parse(path.read_text())))


# benchmarks/plain_keras.py is the plain Keras baseline, a script of its own run in a process of
# its own: its printed JSON line is what it hands back.
@pytest.mark.parametrize("module", [p for p in LIBRARY if p.name != "plain_keras.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_library_module_prints(module):
    # What a library function finds it returns, or hands to a log= callback; the scripts print.
    assert not prints(module)


def test_the_print_check_sees_a_print(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    print('x')\n")
    (tmp_path / "n.py").write_text("def f(log):\n    log('x')  # print('x')\n")
    assert prints(tmp_path / "m.py") and not prints(tmp_path / "n.py")


@pytest.mark.parametrize("script", SCRIPTS + TOOLS, ids=lambda p: p.name)
def test_no_script_imports_another_script(script):
    assert not imported_modules(script) & SCRIPT_NAMES


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_root_scripts_are_short(script):
    assert len(script.read_text().splitlines()) <= 200


@pytest.mark.slow  # a TensorFlow start in a subprocess
def test_importing_the_packages_leaves_stderr_alone():
    # The old `import models` pointed file descriptor 2 at /dev/null while TensorFlow loaded; a
    # library import must not touch the process's descriptors (cli.start_quietly does, on request).
    code = ("import os\ncalls = []\nreal = os.dup2\n"
            "os.dup2 = lambda *a, **k: (calls.append(a), real(*a, **k))[1]\n"
            "import models, models.network, runs, data, training, analysis, evaluation\n"
            "print(len(calls))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "0"


@pytest.mark.slow  # a TensorFlow start in a subprocess
@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("0", "0")])
def test_the_scripts_start_tensorflow_with_onednn_unless_told_otherwise(given, expected):
    # TensorFlow reads the switch once, when it loads; on AVX2-only CPUs it is off by default.
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env |= {"TF_ENABLE_ONEDNN_OPTS": given} if given else {}
    code = ("import os, cli\ncli.start_quietly()\n"
            "from tensorflow.python.util import _pywrap_util_port as port\n"
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], port.IsMklEnabled())")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.split() == [expected, str(expected == "1")]
