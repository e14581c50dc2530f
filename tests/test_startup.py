"""What start-up loads and says.

The light paths (``import rag``, ``rag --help``, ``rag index stats``) each run in a fresh
interpreter, which then reports its ``sys.modules``. None may load torch,
sentence-transformers or transformers (seconds of import time each), nor the evaluation
package (only ``rag eval`` needs it). At start-up, faiss's loader stays quiet, and the
one-time set-up lines (the first run builds the embedding model for minutes) are shown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import rag

from conftest import ROOT

HEAVY = ("torch", "sentence_transformers", "transformers")

_REPORT = """
import json, sys
if sys.argv[1] == "import":
    import rag
else:
    from rag.cli import main
    try:
        code = main(sys.argv[2:])
    except SystemExit as exc:
        code = exc.code
    if code not in (0, None):
        sys.exit(f"exit code {code}")
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(*args: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _REPORT, *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


@pytest.fixture
def hash_index(hash_config):
    index = rag.Index.create(hash_config.index_dir, hash_config)
    index.add([rag.Article(id="a", title="Un titre", text="Une phrase. Une autre phrase.")])
    index.close()
    return hash_config.index_dir


@pytest.mark.parametrize("path", ["import rag", "rag --help", "rag index stats"])
def test_light_paths_import_no_model_library_and_no_evaluation(path, hash_index):
    args = {"import rag": ["import"], "rag --help": ["cli", "--help"],
            "rag index stats": ["cli", "index", "stats", "--index", str(hash_index)]}[path]
    modules = loaded_modules(*args)
    assert not loaded(modules, "rag.evaluation")
    assert [m for m in HEAVY if loaded(modules, m)] == []


def test_rag_eval_still_loads_the_evaluation_package():
    modules = loaded_modules("cli", "eval", "--help")
    assert loaded(modules, "rag.evaluation.cli")


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_faiss_does_not_report_which_cpu_build_it_tried():
    done = run_python("import logging; logging.basicConfig(level=logging.INFO); import rag, faiss")
    assert done.returncode == 0, done.stderr
    assert "faiss.loader" not in done.stderr and "AVX" not in done.stderr


def test_the_cli_shows_the_set_up_lines_and_hides_other_info():
    done = run_python("import logging\n"
                      "from rag.cli import configure_logging\n"
                      "configure_logging(verbose=False)\n"
                      "logging.getLogger('rag.setup').info('Preparing the embedding model')\n"
                      "logging.getLogger('rag.index').info('routine detail')\n"
                      "logging.getLogger('rag.index').warning('something to know')\n")
    assert done.returncode == 0, done.stderr
    assert "Preparing the embedding model" in done.stderr and "something to know" in done.stderr
    assert "routine detail" not in done.stderr
