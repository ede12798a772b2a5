"""Unit tests of scripts/find-deps (import scan -> conda packages), one per rule.

Each test writes a small project into tmp_path and runs the script as a
subprocess (the way the Makefile does), then checks the YAML it prints and
the warnings on stderr. The scan itself is portable_env.scan.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_tree
from portable_env.scan import is_test_path, parse_python, render, scan
from portable_env.scan.evaluate import Evaluator
from portable_env.settings import resolve

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "find-deps"


write = write_tree


def find_deps(root: Path, *args: str, rc: int = 0) -> tuple[dict, str]:
    """Run the script; return (parsed YAML, stderr)."""
    proc = subprocess.run([sys.executable, str(SCRIPT), str(root), *args],
                          capture_output=True, text=True)
    assert proc.returncode == rc, proc.stderr
    return (yaml.safe_load(proc.stdout) if rc == 0 else {}), proc.stderr


def settings_json(tmp_path: Path, text: str, name: str = "cfg") -> Path:
    """build/P/<key>/settings.json of a project whose project.yml is `text`
    (written through the settings model, as scripts/settings does)."""
    proj = write(tmp_path / name, {"project.yml": text})
    out = tmp_path / f"{name}-settings.json"
    out.write_text(resolve(proj).to_json())
    return out


def notebook(*cells: tuple[str, str]) -> str:
    """An nbformat-4 notebook with (cell_type, source) cells."""
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": t, "metadata": {}, "source": src.splitlines(keepends=True),
         **({"outputs": [], "execution_count": None} if t == "code" else {})}
        for t, src in cells]})


# ---------------------------------------------------------------- contract

def test_example_project_gives_the_seed_packages() -> None:
    doc, err = find_deps(REPO / "projects" / "example")
    assert doc["required"] == ["numpy", "pandas", "scikit-learn", "scipy"]
    assert doc["optional"] == []
    assert doc["imports"]["scikit-learn"] == {"sklearn": ["second_file.py:2"]}
    assert doc["imports"]["numpy"] == {"numpy": ["first_file.py:2"]}
    assert set(doc["unresolved"]) <= {"pandas", "scipy"}
    assert "numpy" not in doc["unresolved"] and "scikit-learn" not in doc["unresolved"]
    assert list(doc) == ["required", "optional", "on_demand", "unresolved", "imports", "unparsed"]
    assert "conda_forge_metadata" not in err and "Traceback" not in err


def test_output_is_deterministic_and_written_atomically(tmp_path: Path) -> None:
    proj = write(tmp_path / "p", {"b.py": "import yaml\nimport numpy\n", "a.py": "import numpy\n"})
    out = tmp_path / "out" / "deps.yml"
    outputs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, str(SCRIPT), str(proj), "-o", str(out)],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout == ""
        outputs.append(out.read_bytes())
    first = outputs[0]
    assert outputs[1] == first
    assert [p.name for p in out.parent.iterdir()] == ["deps.yml"], "no temp file left"
    doc = yaml.safe_load(first)
    assert doc["required"] == ["numpy", "pyyaml"]
    assert doc["imports"]["numpy"] == {"numpy": ["a.py:1", "b.py:2"]}


# ---------------------------------------------------------------- local code

def test_local_modules_packages_src_layout_and_relative_imports_are_not_deps(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "main.py": "import helper\nfrom mypkg import sub\nimport srcpkg.core\nimport requests\n",
        "helper.py": "X = 1\n",
        "mypkg/__init__.py": "from . import sub\nfrom .sub import thing\n",
        "mypkg/sub.py": "thing = 1\nfrom ..mypkg import sub as again\n",
        "src/srcpkg/__init__.py": "",
        "src/srcpkg/core.py": "from srcpkg import util\n",
        "src/srcpkg/util.py": "",
        "scripts/run.py": "import sibling\nimport mypkg\n",
        "scripts/sibling.py": "",
        "ext/fast.cpython-311-x86_64-linux-gnu.so": "",
        "uses_ext.py": "import fast\n",
    })
    doc, _ = find_deps(proj)
    assert doc["required"] == ["requests"]
    assert doc["unresolved"] == []


def test_namespace_package_dirs_do_not_hide_other_packages_of_the_namespace(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "google/cloud/mything/__init__.py": (
            "from google.cloud import mything\nfrom google.cloud.mything import x\n"
            "from google.cloud import storage\nfrom google.api_core import retry\nfrom google.no_such_api import x\n"),
    })
    doc, err = find_deps(proj)
    assert doc["required"] == ["google-api-core", "google-cloud-storage", "google-no-such-api"]
    assert doc["imports"]["google-cloud-storage"] == {
        "google.cloud.storage": ["google/cloud/mything/__init__.py:3"]}
    # google.no_such_api is guessed from the namespace: flagged, not silent
    assert doc["unresolved"] == ["google-no-such-api"]
    assert "import 'google.no_such_api'" in err


# ---------------------------------------------------------------- notebooks

def test_notebook_code_cells_with_magics_and_shell_lines(tmp_path: Path) -> None:
    proj = write(tmp_path, {"analysis.ipynb": notebook(
        ("markdown", "# import nothing here\n"),
        ("code", "!pip install requests\n%matplotlib inline\nimport numpy as np\nfiles = !ls\n"),
        ("code", "%%bash\nimport notpython\n"),
        ("code", "%%time\nimport pandas\n"),
        ("code", "np.sum?\nfrom sklearn import svm\n"),
    )})
    doc, _ = find_deps(proj)
    # %matplotlib inline imports matplotlib when it runs; !pip install names what the notebook needs
    assert doc["required"] == ["matplotlib-base", "numpy", "pandas", "requests", "scikit-learn"]
    assert doc["imports"]["requests"] == {"install:requests": ["analysis.ipynb[2]:1"]}
    assert doc["imports"]["matplotlib-base"] == {"matplotlib": ["analysis.ipynb[2]:2"]}
    assert doc["imports"]["numpy"] == {"numpy": ["analysis.ipynb[2]:3"]}
    assert doc["imports"]["pandas"] == {"pandas": ["analysis.ipynb[4]:2"]}
    assert doc["unparsed"] == []


def test_notebook_that_is_not_json_is_reported_not_fatal(tmp_path: Path) -> None:
    proj = write(tmp_path, {"broken.ipynb": "{not json", "ok.py": "import numpy\n"})
    doc, err = find_deps(proj)
    assert doc["required"] == ["numpy"]
    assert len(doc["unparsed"]) == 1 and doc["unparsed"][0].startswith("broken.ipynb:1: ")
    assert "broken.ipynb:1" in err and "find-deps: warning:" in err


# ---------------------------------------------------------------- classification

def test_type_checking_imports_are_excluded(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": (
        "import typing\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import pandas\nelse:\n    import numpy\n"
        "if typing.TYPE_CHECKING:\n    from scipy import sparse\n"
        "if not TYPE_CHECKING:\n    import yaml\n")})
    doc, _ = find_deps(proj)
    assert doc["required"] == ["numpy", "pyyaml"]
    assert doc["optional"] == []


def test_try_except_import_error_with_fallback_is_optional(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": (
        "try:\n    import ujson as json\nexcept ImportError:\n    import json\n"
        "try:\n    import numpy\nexcept ModuleNotFoundError:\n    numpy = None\n"
        "try:\n    import requests\nexcept ImportError:\n"
        "    raise SystemExit('pip install requests')\n"
        "try:\n    import tomllib\nexcept ImportError:\n    import tomli as tomllib\n")})
    doc, _ = find_deps(proj)
    assert doc["required"] == ["requests"], "a handler that only raises is no fallback"
    assert doc["optional"] == ["numpy", "tomli", "ujson"]


def test_imports_in_function_bodies_are_required_unless_guarded(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": (
        "def load():\n    import yaml\n    return yaml\n"
        "def plot():\n    try:\n        import matplotlib\n    except ImportError:\n        return None\n"
        "def _load_psutil():\n    import psutil\n"
        "def best():\n    try:\n        return _load_psutil()\n    except ImportError:\n        pass\n")})
    doc, _ = find_deps(proj)
    assert doc["required"] == ["pyyaml"]
    assert doc["optional"] == ["matplotlib-base", "psutil"]


def test_lazy_imports_required_in_programs_on_demand_in_package_modules(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "run.py": "import mypkg\ndef main():\n    import yaml\n",
        "mypkg/__init__.py": "from .core import f\n",
        "mypkg/__main__.py": "def main():\n    import click\n",
        "mypkg/tool.py": "def main():\n    import rich\nif __name__ == '__main__':\n    main()\n",
        "mypkg/core.py": ("import requests\nfrom . import _dill\n"
                          "def f():\n    import matplotlib.pyplot\n    import numpy\n"
                          "def connect():\n    from .backends import redis\n"),
        "mypkg/_dill.py": "import dill\n",
        "mypkg/util.py": "import numpy\n",
        "mypkg/backends/__init__.py": "",
        "mypkg/backends/redis.py": "import redis\nimport msgpack\n",
    })
    doc, err = find_deps(proj)
    assert doc["required"] == ["click", "dill", "msgpack-python", "numpy", "pyyaml", "requests",
                               "rich"], \
        "an unguarded import in a function of a script, __main__ or program module is needed; " \
        "so is a wrapper module (_dill.py) the package loads when it is imported"
    assert doc["on_demand"] == ["matplotlib-base", "redis-py"], \
        "lazy imports of a package's inner modules and integration modules loaded on demand"
    assert doc["optional"] == []
    assert "note: 2 package(s) are imported only on demand" in err
    assert "matplotlib-base (mypkg/core.py:4)" in err and "install_on_demand: false" in err


def test_modules_no_entry_point_loads_are_not_required(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "mypkg/__init__.py": "from mypkg.db import connect\n",
        "mypkg/db/__init__.py": ("from ..loader import load\nfrom . import registry\n"
                                 "def connect(name):\n    return load('mypkg.db.backends.' + name)\n"),
        "mypkg/loader.py": "import importlib\nload = importlib.import_module\n",
        "mypkg/db/backends/__init__.py": "",
        "mypkg/db/backends/mysql.py": "import MySQLdb\n",
        "mypkg/db/backends/sqlite.py": "import sqlalchemy\n",
        "mypkg/db/defaults.py": "ENGINE = 'mypkg.db.backends.sqlite'\n",
        "mypkg/db/registry.py": "from . import defaults\nimport attr\n",
        "mypkg/cli.py": "import click\n",
        "mypkg/_tools/__init__.py": "",
        "mypkg/_tools/gen.py": "import black\n",
        "mypkg/lazy.py": "def f():\n    from mypkg._impl import g\n",
        "mypkg/_impl.py": "import toolz\n",
    })
    doc, _ = find_deps(proj)
    # cli: public module users run; registry -> defaults names sqlite as a string;
    # _impl: imported by a function of lazy.py
    assert doc["required"] == ["attrs", "click", "sqlalchemy", "toolz"]
    # backends/mysql.py: public, reached by no import: on demand; _tools/gen.py: private, optional
    assert doc["optional"] == ["black"]
    assert "mysqlclient" in doc["on_demand"]
    assert doc["imports"]["mysqlclient"] == {"MySQLdb": ["mypkg/db/backends/mysql.py:1"]}


def test_lazy_exports_and_program_modules_are_entry_points(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "mypkg/__init__.py": ("from importlib import import_module\n"
                              "_EXPORTS = {'Stream': ('.streaming.chat', 'Stream')}\n"
                              "def __getattr__(name):\n"
                              "    mod, attr = _EXPORTS[name]\n"
                              "    return getattr(import_module(mod, __name__), attr)\n"),
        "mypkg/streaming/__init__.py": "",
        "mypkg/streaming/chat/_impl.py": "import jiter\n",
        "mypkg/streaming/chat/__init__.py": "from ._impl import *\n",
        "mypkg/commands/__init__.py": "",
        "mypkg/commands/tool.py": "import typer\nif __name__ == '__main__':\n    pass\n",
        "mypkg/commands/_gen.py": "import black\nif __name__ == '__main__':\n    pass\n",
    })
    doc, _ = find_deps(proj)
    # '.streaming.chat' is loaded by import_module(mod, __name__) (PEP 562
    # lazy exports); tool.py runs as `python -m mypkg.commands.tool`;
    # _gen.py is a private developer script
    assert doc["required"] == ["jiter", "typer"]
    assert doc["optional"] == ["black"]


def test_typing_only_exports_colon_strings_and_shipped_examples(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "mypkg/__init__.py": ("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from ._models import Model\n    import pandas\n"
                              "_WHERE = {'Model': '_models'}\n"
                              "def __getattr__(name):\n    import importlib\n"
                              "    return getattr(importlib.import_module('.' + _WHERE[name], __name__), name)\n"),
        "mypkg/_models.py": "import attr\n",
        "mypkg/config.py": "PROTOCOLS = {'h11': 'mypkg.protocols.h11_impl:H11Protocol'}\n",
        "mypkg/protocols/__init__.py": "",
        "mypkg/protocols/h11_impl.py": "import h11\n",
        "mypkg/plain.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._hidden import X\n",
        "mypkg/_hidden.py": "import toolz\n",
        "mypkg/examples/plot_demo.py": "import seaborn\n",
        "mypkg/examples/intro.ipynb": notebook(("code", "import plotly\n")),
        "examples/run.py": "import mypkg\nimport click\n",
    })
    doc, _ = find_deps(proj)
    # models: a PEP 562 lazy export named under TYPE_CHECKING; h11_impl: a
    # 'module:attr' string; _hidden: a TYPE_CHECKING import of a module
    # without __getattr__ loads nothing; examples inside the package are
    # shipped docs, the project's own examples/ folder is code
    assert doc["required"] == ["attrs", "click", "h11"]
    assert doc["optional"] == ["toolz"]
    assert "pandas" not in doc["imports"] and "seaborn" not in doc["imports"], \
        "TYPE_CHECKING imports and shipped examples are never dependencies"


def test_import_guarding_context_managers(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": (
        "import contextlib\nfrom mylib import try_import\n"
        "with try_import() as _imports:\n    import redis\n"
        "with contextlib.suppress(ImportError):\n    import ujson\n"
        "with contextlib.suppress(KeyError):\n    import click\n"
        "with open('x') as f:\n    import yaml\n"), "mylib.py": ""})
    doc, _ = find_deps(proj)
    assert doc["required"] == ["click", "pyyaml"]
    assert doc["optional"] == ["redis-py", "ujson"]


def test_flag_comparisons_guard_like_bare_flags(tmp_path: Path) -> None:
    proj = write(tmp_path, {"config.py": "LXML = DEFUSEDXML = NO_UJSON = UJSON = None\n", "a.py": (
        "from config import LXML, DEFUSEDXML, NO_UJSON, UJSON\n"
        "if LXML is True:\n    import lxml\nelse:\n    import html5lib\n"
        "if DEFUSEDXML == True:\n    import defusedxml\n"
        "if NO_UJSON is False:\n    pass\nelse:\n    import simplejson\n"
        "if UJSON is not None:\n    import ujson\n"
        "x = 0\nif x == 0:\n    import click\n")})
    doc, _ = find_deps(proj)
    assert doc["required"] == ["click", "html5lib", "simplejson"]
    assert doc["optional"] == ["defusedxml", "lxml", "ujson"]


def test_flat_project_files_are_all_entry_points(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": "import numpy\n", "b.py": "def f():\n    import yaml\n",
                            "sub/c.py": "import requests\n", "nb.ipynb": notebook(
                                ("code", "def g():\n    import scipy\n"))})
    doc, _ = find_deps(proj)
    assert doc["required"] == ["numpy", "pyyaml", "requests", "scipy"]
    assert doc["optional"] == []


BACKENDS = ("from config import backend\n"
            "if backend() == 'torch':\n    import torch\n"
            "elif backend() in ('jax', 'flax'):\n    import jax\n"
            "else:\n    import numpy\n"
            "if __name__ == '__main__':\n    import yaml\n")


def in_package(code: str) -> dict[str, str]:
    """`code` as an inner module of a package that loads it."""
    return {"mypkg/__init__.py": "from . import a\n", "mypkg/a.py": code}


def test_branches_picked_by_a_setting_are_optional_in_packages_only(tmp_path: Path) -> None:
    config = {"config.py": "def backend():\n    return 'torch'\n"}
    library = BACKENDS.split("if __name__")[0]  # a module run as a program is a script
    doc, _ = find_deps(write(tmp_path / "lib", {**in_package(library), **config}))
    assert doc["required"] == ["numpy"]
    assert doc["optional"] == ["jax", "pytorch"]
    # a script runs every branch its user picks: `--backend torch` must work on the target
    doc, _ = find_deps(write(tmp_path / "app", {"a.py": BACKENDS, **config}))
    assert doc["required"] == ["jax", "numpy", "pytorch", "pyyaml"]
    assert doc["optional"] == []


def test_availability_checks_make_imports_optional(tmp_path: Path) -> None:
    code = (
        "import importlib.util, os\n"
        "if importlib.util.find_spec('numba') is not None:\n    import numba\n"
        "HAS_LXML = True\nif HAS_LXML:\n    import lxml\n"
        "if os.environ.get('USE_CUPY'):\n    import cupy\n"
        "def is_tracing_enabled():\n    return False\n"
        "if is_tracing_enabled():\n    import opentelemetry\n"
        "try:\n    import torch\nexcept ImportError:\n    torch = None\n"
        "def f():\n    import torch\n    return torch\n"
        "import click\n")
    doc, _ = find_deps(write(tmp_path / "lib", in_package(code)))
    assert doc["required"] == ["click"]
    assert doc["optional"] == ["cupy", "lxml", "numba", "opentelemetry-api", "pytorch"]
    # in a script only the ImportError-style guards (find_spec, HAS_X, try/except) count;
    # an environment variable or is_x_enabled() is a setting, and f() imports torch unguarded
    doc, _ = find_deps(write(tmp_path / "app", {"a.py": code}))
    assert doc["required"] == ["click", "cupy", "opentelemetry-api", "pytorch"]
    assert doc["optional"] == ["lxml", "numba"]


def test_else_of_an_optional_import_is_optional(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": (
        "try:\n    from urllib3.contrib import pyopenssl\nexcept ImportError:\n"
        "    pyopenssl = None\nelse:\n    import cryptography\n"
        "try:\n    import tomllib\nexcept ImportError:\n    tomllib = None\n"
        "else:\n    import yaml\n")})
    doc, _ = find_deps(proj)
    # the first else runs only when the optional import worked; a try of a
    # standard-library module always succeeds on the target
    assert doc["required"] == ["pyyaml"]
    assert doc["optional"] == ["cryptography", "urllib3"]


def test_tests_and_hooks_that_name_the_module_make_its_import_optional(tmp_path: Path) -> None:
    code = (
        "from util import is_running_trio, array_type, register_lazy, mode\n"
        "def event():\n    if is_running_trio():\n        import trio\n"
        "def ns(x):\n    if isinstance(x, array_type('cupy')):\n        import cupy\n"
        "def patch():\n    if 'gevent' in mode:\n        import gevent\n"
        "@register_lazy('numba')\ndef _reg():\n    import numba\n"
        "_yaml = None\ndef get_yaml():\n    global _yaml\n"
        "    if _yaml is None:\n        import yaml as _yaml\n    return _yaml\n"
        "def plot(x):\n    if x:\n        import matplotlib\n"
        "@app.route('/requests')\ndef view():\n    import requests\n")
    doc, _ = find_deps(write(tmp_path / "lib", {**in_package(code), "util.py": ""}))
    # a lazy-import cache (`if _yaml is None`) and plain conditions stay required
    # (functions of a package's inner module: on demand)
    assert doc["on_demand"] == ["matplotlib-base", "pyyaml", "requests"]
    assert doc["optional"] == ["cupy", "gevent", "numba", "trio"]
    # in a script every one of these paths can run
    doc, _ = find_deps(write(tmp_path / "app", {"a.py": code, "util.py": ""}))
    assert doc["required"] == ["cupy", "gevent", "matplotlib-base", "numba", "pyyaml", "requests", "trio"]
    assert doc["optional"] == []


def test_importlib_and_dunder_import_literals_are_detected(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": (
        "import importlib\nfrom importlib import import_module\n"
        "yaml = importlib.import_module('yaml')\n"
        "np = __import__('numpy')\n"
        "rq = import_module('requests.adapters')\n"
        "name = 'pandas'\nimportlib.import_module(name)\n"
        "importlib.import_module('.local', __package__)\n")})
    doc, _ = find_deps(proj)
    assert doc["required"] == ["numpy", "pyyaml", "requests"]
    assert doc["imports"]["pyyaml"] == {"yaml": ["a.py:3"]}


def test_platform_only_modules_and_branches_are_dropped_for_linux(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "a.py": ("import sys, os\nimport win32api\nimport winreg, msvcrt, _winapi\n"
                 "if sys.platform == 'win32':\n    import pywinauto\nelse:\n    import pexpect\n"
                 "if os.name == 'nt':\n    import wmi_client_lib\n"
                 "if sys.platform.startswith('darwin'):\n    import rumps\n"
                 "import pywintypes\n"),
        "util_windows.py": "import comtypes_helper_pkg\n",
    })
    doc, _ = find_deps(proj)
    assert doc["required"] == ["pexpect"]


def test_python_version_branches_and_target_stdlib(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": (
        "import sys\n"
        "if sys.version_info >= (3, 11):\n    import tomllib\nelse:\n    import tomli as tomllib\n"
        "if sys.version_info < (3, 8):\n    import importlib_metadata\n"
        "import distutils.core\n")})
    doc, _ = find_deps(proj, "--python", "3.12")
    assert doc["required"] == ["setuptools"], "distutils left the stdlib in 3.12"
    doc, _ = find_deps(proj, "--python", "3.11")
    assert doc["required"] == []
    doc, _ = find_deps(proj, "--python", "3.10")
    assert doc["required"] == ["tomli"]


# ---------------------------------------------------------------- files

def test_unparsable_files_are_warned_with_file_and_line(tmp_path: Path) -> None:
    proj = write(tmp_path, {"good.py": "import numpy\n", "old.py": "import os\nprint 'hello'\n"})
    (proj / "latin.py").write_bytes(b"import yaml\nx = '\xe9'\n")
    doc, err = find_deps(proj)
    assert doc["required"] == ["numpy", "pyyaml"], "an unparsable file's import lines are still read"
    assert [u.split(":")[:2] for u in doc["unparsed"]] == [["latin.py", "2"], ["old.py", "2"]]
    assert "old.py:2:" in err and "latin.py:2:" in err and "could not be parsed" in err


def test_nothing_parsable_or_no_python_files_is_an_error(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad", {"a.py": "print 'py2'\n", "b.py": "def (:\n"})
    _, err = find_deps(bad, rc=1)
    assert err.startswith(f"error: find-deps: {bad}: none of the 2 Python files could be parsed")
    empty = write(tmp_path / "empty", {"README.md": "hi\n"})
    _, err = find_deps(empty, rc=1)
    assert f"error: find-deps: {empty}: no .py or .ipynb files found" in err
    _, err = find_deps(tmp_path / "missing", rc=1)
    assert "not a folder" in err


def test_a_folder_of_only_test_code_is_scanned_as_the_code(tmp_path: Path) -> None:
    """Nothing but test code (a test suite to run, a pytest plugin module
    pytest_x.py): that is the code that runs, scanned with a note."""
    only_tests = write(tmp_path / "t", {"tests/test_a.py": "import numpy\n", "pytest_rerun.py": "import packaging\n"})
    doc, err = find_deps(only_tests)
    assert doc["required"] == ["numpy", "packaging"]
    assert "note: " in err and "are test code" in err


def test_test_files_are_excluded_by_default_and_included_on_request(tmp_path: Path) -> None:
    proj = write(tmp_path / "p", {
        "app.py": "import requests\n",
        "tests/test_app.py": "import pytest\n",
        "test_other.py": "import hypothesis\n",
        "thing_test.py": "import responses\n",
        "conftest.py": "import pytest_mock\n",
    })
    doc, _ = find_deps(proj)
    assert doc["required"] == ["requests"]
    doc, _ = find_deps(proj, "--include-tests")
    assert doc["required"] == ["hypothesis", "pytest", "pytest-mock", "requests", "responses"]
    doc, _ = find_deps(proj, "--settings", str(settings_json(tmp_path, "include_tests: true\n")))
    assert "pytest" in doc["required"]


# ---------------------------------------------------------------- mapping

def test_unmapped_names_are_unresolved_and_warned(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": "import numpy\n\nimport frobnicate_xyz\n"})
    doc, err = find_deps(proj)
    assert doc["required"] == ["frobnicate-xyz", "numpy"]
    assert doc["unresolved"] == ["frobnicate-xyz"]
    assert ("find-deps: warning: import 'frobnicate_xyz' (in a.py:3) has no known conda package; "
            "assumed 'frobnicate-xyz'. If that's wrong add `imports: {frobnicate_xyz: <package>}` to "
            f"{proj / 'project.yml'}") in err


def test_generated_mapping_renames_imports(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": "import yaml, dateutil.parser, zmq, attr, bs4, cv2, torch\n"})
    doc, _ = find_deps(proj)
    assert doc["required"] == ["attrs", "beautifulsoup4", "opencv", "python-dateutil",
                               "pytorch", "pyyaml", "pyzmq"]
    assert doc["unresolved"] == [], "torch: the PyPI -> conda rename table knows it (pytorch), no guess"


def test_settings_override_ignore_and_exclude(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "a.py": "import cv3\nimport internal_tool\nimport numpy\nimport scipy\nimport yaml\n",
        "project.yml": ("imports:\n  cv3: opencv\n  internal_tool: ''\n  yaml: ruamel.yaml\n"
                        "exclude:\n  - scipy\n"),
    })
    doc, err = find_deps(proj)
    assert doc["required"] == ["numpy", "opencv", "ruamel.yaml"]
    assert doc["unresolved"] == []
    assert "internal_tool" not in err and "cv3" not in err


def test_repository_mapping_file_sits_between_settings_and_generated(tmp_path: Path) -> None:
    proj = write(tmp_path / "p", {"a.py": "import yaml\nimport foo_bar\n"})
    mapping = write(tmp_path, {"map.yml": "foo_bar: foo-bar-conda\nyaml: my-yaml\n"}) / "map.yml"
    doc, _ = find_deps(proj, "--mapping", str(mapping))
    assert doc["required"] == ["foo-bar-conda", "my-yaml"]
    assert doc["unresolved"] == []
    settings = settings_json(tmp_path, "imports: {yaml: pyyaml}\n")
    doc, _ = find_deps(proj, "--mapping", str(mapping), "--settings", str(settings))
    assert doc["required"] == ["foo-bar-conda", "pyyaml"]
    find_deps(proj, "--mapping", str(tmp_path / "nope.yml"), rc=1)


def test_python_setting_selects_the_stdlib(tmp_path: Path) -> None:
    proj = write(tmp_path, {"a.py": "import imghdr\n", "project.yml": "python: '3.13'\n"})
    doc, err = find_deps(proj)
    assert doc["required"] == ["standard-imghdr"] and "removed from the standard library in Python 3.13" in err
    doc, _ = find_deps(proj, "--python", "3.12")
    assert doc["required"] == []


# ---------------------------------------------------------------- internals

def test_static_evaluation_of_platform_and_version_tests() -> None:
    ev = Evaluator((3, 12))

    def truth(src: str):
        return ev.truth(ast.parse(src, mode="eval").body)

    assert truth("sys.platform == 'win32'") is False
    assert truth("sys.platform != 'win32'") is True
    assert truth("sys.platform in ('linux', 'darwin')") is True
    assert truth("os.name == 'nt' or IS_WINDOWS") is False
    assert truth("sys.version_info >= (3, 11)") is True
    assert truth("sys.version_info[:2] < (3, 12)") is False
    assert truth("sys.version_info >= (3, 12, 1)") is None
    assert truth("PY310") is True and truth("PY314") is False
    assert truth("some_flag") is None


def test_settings_json_gives_python_imports_exclude_and_include_tests(tmp_path: Path) -> None:
    proj = write(tmp_path / "p", {"a.py": "import imghdr\nimport cv3\nimport scipy\nimport nosuchthing\n",
                                  "tests/test_a.py": "import pytest\n"})
    settings = settings_json(tmp_path, 'python: ">=3.13"\nimports: {cv3: opencv}\nexclude: [scipy]\n'
                             "include_tests: true\n")
    doc, err = find_deps(proj, "--settings", str(settings))
    assert doc["required"] == ["nosuchthing", "opencv", "pytest", "standard-imghdr"]
    assert "removed from the standard library in Python 3.13; the package 'standard-imghdr' provides it" in err
    assert "cfg/project.yml" in err, "warnings name the project.yml the settings came from"
    doc, _ = find_deps(proj, "--settings", str(settings), "--python", "3.12")
    assert doc["required"] == ["nosuchthing", "opencv", "pytest"], "--python overrides the settings' python"


def test_settings_option_refuses_project_yml_and_missing_files(tmp_path: Path) -> None:
    proj = write(tmp_path / "p", {"a.py": "import numpy\n", "project.yml": "include_tests: true\n"})
    _, err = find_deps(proj, "--settings", str(proj / "project.yml"), rc=1)
    assert err.startswith("error: find-deps: ") and "settings.json" in err and "Traceback" not in err
    _, err = find_deps(proj, "--settings", str(tmp_path / "nope.json"), rc=1)
    assert "nope.json: settings file not found" in err


def test_project_yml_is_read_through_the_settings_model(tmp_path: Path) -> None:
    proj = write(tmp_path / "p", {"a.py": "import numpy\n", "project.yml": "include_test: true\n"})
    _, err = find_deps(proj, rc=1)
    assert "project.yml" in err and "unknown key 'include_test'" in err and "Traceback" not in err


def test_scan_as_a_library(tmp_path: Path) -> None:
    proj = write(tmp_path / "p", {"a.py": "import cv3\nimport numpy\nimport frobnicate_xyz\n",
                                  "tests/test_a.py": "import pytest\n"})
    res = scan(proj, python=(3, 12), imports={"cv3": "opencv"}, exclude=["numpy >=1.26"],
               settings_file="projects/p/project.yml")
    assert res.required == {"frobnicate-xyz", "opencv"}
    assert [kind for kind, _ in res.warnings] == ["warning"]
    assert "projects/p/project.yml" in res.warnings[0][1]
    assert yaml.safe_load(render(res))["imports"]["opencv"] == {"cv3": ["a.py:1"]}
    assert "pytest" in scan(proj, include_tests=True).required


def test_python_specs_and_test_paths() -> None:
    assert parse_python("3.12", "x") == (3, 12)
    assert parse_python(">=3.11,<3.13", "x") == (3, 11)
    assert parse_python("3.11.*", "x") == (3, 11)
    assert parse_python("3.99", "x") == (3, 14)
    with pytest.raises(Exception, match="cannot read python version"):
        parse_python("latest", "project.yml")
    assert is_test_path(Path("tests/a.py")) and is_test_path(Path("pkg/_tests/x.py"))
    assert is_test_path(Path("test_a.py")) and is_test_path(Path("a_test.py")) and is_test_path(Path("conftest.py"))
    assert not is_test_path(Path("pkg/testing_utils.py")) and not is_test_path(Path("contest.py"))


def test_generated_mapping_is_up_to_date() -> None:
    pytest.importorskip("depfinder")
    pytest.importorskip("whl2conda")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gen-import-map")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    if "not installed here" in proc.stderr:
        pytest.skip("this Python does not have every pinned tool installed")
    assert proc.stdout == (REPO / "templates" / "import-map.generated.yml").read_text(), \
        "run scripts/gen-import-map -o templates/import-map.generated.yml"
