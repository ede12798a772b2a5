"""Unit tests of the import-detection rules of issue 13 (portable_env.scan):
every code path of a script or notebook finds its package on the target.
One test per kind of miss; each fails when its rule is taken out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_tree
from portable_env.scan import is_test_path, scan
from portable_env.scan.magics import cell_source, install_names, magic_imports

write = write_tree


def notebook(*sources: str) -> str:
    """An nbformat-4 notebook of code cells."""
    cells = [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": src.splitlines(keepends=True),
        }
        for src in sources
    ]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def installed(root: Path) -> set[str]:
    """What the scan installs by default (required + on demand)."""
    res = scan(root)
    return res.required | res.on_demand


# 1 ---------------------------------------------------------------- folders


def test_a_folder_without_init_does_not_hide_the_package_it_is_named_after(tmp_path: Path) -> None:
    proj = write(
        tmp_path,
        {
            "core/numpy/01-intro.ipynb": notebook("import numpy as np\nfrom numpy import linalg\n"),
            "core/xarray/run.py": "import xarray\nimport helpers\n",
            "core/xarray/helpers.py": "",
            "extras/solutions/ipyvuetify/app.py": "import ipyvuetify as v\n",
            "tools/plot.py": "",
            "main.py": "from tools import plot\nimport tools.plot\nimport core.xarray\n",
        },
    )
    res = scan(proj)
    assert {"numpy", "xarray", "ipyvuetify"} <= res.required, "a notebooks folder hides nothing"
    assert "tools" not in res.required and "helpers" not in res.required and "core" not in res.required, (
        "modules inside a folder, and the folders by their dotted path, are local"
    )


def test_a_module_beside_the_code_still_shadows(tmp_path: Path) -> None:
    proj = write(
        tmp_path, {"lab/run.py": "import numpy\nimport pandas\n", "lab/numpy.py": "x = 1\n", "pandas/notes.md": ""}
    )
    res = scan(proj)
    assert res.required == {"pandas"}, "numpy.py beside run.py is what `import numpy` loads"


# 2 ---------------------------------------------------------------- magics


def test_magics_that_need_a_package_import_it(tmp_path: Path) -> None:
    proj = write(
        tmp_path,
        {
            "nb.ipynb": notebook(
                "%load_ext line_profiler\n%load_ext autoreload\n%reload_ext memory_profiler\n",
                "%matplotlib widget\n",
                "%%cython\ncdef int x = 1\n",
                "%load_ext sql\n",
                "%%writefile train.py\nimport sklearn\n",
                "%%writefile notes.txt\nimport notpython\n",
                "%%file mprun_demo.py\ndef f():\n    pass\n",
                "from mprun_demo import f\n%mprun -f f f()\n",
            ),
            "export.py": "get_ipython().run_line_magic('load_ext', 'rpy2.ipython')\n"
            "get_ipython().magic('matplotlib inline')\n",
        },
    )
    res = scan(proj)
    assert res.required == {
        "line_profiler",
        "ipython",
        "memory_profiler",
        "matplotlib-base",
        "ipympl",
        "cython",
        "ipython-sql",
        "scikit-learn",
        "rpy2",
    }
    assert "mprun-demo" not in res.unresolved, "a module the notebook writes itself is local"
    assert magic_imports("matplotlib", "inline") == ["matplotlib"]
    assert magic_imports("load_ext", "autoreload") == ["IPython"]
    assert magic_imports("time", "f()") == []


# 3 ---------------------------------------------------------------- guarded once


def test_guarded_once_stays_required_where_imported_unguarded(tmp_path: Path) -> None:
    code = (
        "def fast():\n    try:\n        import numba\n    except ImportError:\n        return None\n"
        "def jit(f):\n    import numba\n    return numba.njit(f)\n"
    )
    assert "numba" in scan(write(tmp_path / "app", {"run.py": code})).required
    nb = notebook(
        "try:\n    import seaborn\nexcept ImportError:\n    seaborn = None\n",
        "def plot():\n    import seaborn\n    seaborn.set()\n",
    )
    assert "seaborn-base" in scan(write(tmp_path / "nb", {"a.ipynb": nb})).required
    lib = {"pkg/__init__.py": "from . import core\n", "pkg/core.py": code}
    assert "numba" in scan(write(tmp_path / "lib", lib)).optional, "lazy import of a package it guards: optional"
    lib["pkg/core.py"] = code.replace("import numba\n    except", "from numba import njit\n    except")
    res = scan(write(tmp_path / "lib2", lib))
    assert "numba" in res.on_demand, "a guarded feature of it beside an unguarded import: on demand"


def test_a_guard_of_a_feature_of_a_package_does_not_guard_the_package(tmp_path: Path) -> None:
    """`from yaml import CSafeLoader` under a guard whose fallback is
    `from yaml import SafeLoader`, or in a module that imports yaml
    unguarded elsewhere, guards libyaml's loader, not PyYAML: a package's
    late imports of yaml are on demand (installed), not optional."""
    feature = (
        "def loader():\n    try:\n        from yaml import CSafeLoader as L\n"
        "    except ImportError:\n        from yaml import SafeLoader as L\n    return L\n"
    )
    lib = {
        "pkg/__init__.py": "from . import util, io\n",
        "pkg/util.py": (
            "def get_loader():\n    try:\n        from yaml import CSafeLoader\n    except ImportError:\n"
            "        return None\n    return CSafeLoader\n\ndef dump(x):\n    import yaml\n    return yaml.dump(x)\n"
        ),
        "pkg/io.py": "def read(t):\n    import yaml\n    return yaml.safe_load(t)\n",
    }
    assert "pyyaml" in scan(write(tmp_path / "lib", lib)).on_demand
    lib["pkg/io.py"] = feature
    lib["pkg/util.py"] = "def dump(x):\n    import yaml\n    return yaml.dump(x)\n"
    assert "pyyaml" in scan(write(tmp_path / "lib2", lib)).on_demand


def test_a_branch_on_a_setting_beside_a_plain_import_does_not_guard_the_package(tmp_path: Path) -> None:
    """`if backend() == "ryaml": ... import yaml` beside `import yaml` in the same
    module is a code path, not an anticipated absence: the package's late
    imports stay on demand."""
    lib = {
        "pkg/__init__.py": "from . import util\n",
        "pkg/util.py": (
            "def backend():\n    return 'pyyaml'\n"
            "def load(t):\n    if backend() == 'ryaml':\n        import yaml\n        return yaml.safe_load(t)\n"
            "    import yaml\n    return yaml.safe_load(t)\n"
        ),
    }
    assert "pyyaml" in scan(write(tmp_path / "lib", lib)).on_demand


def test_a_handler_of_any_error_that_raises_its_own_is_no_import_guard(tmp_path: Path) -> None:
    """`try: ... from genson import X ... except Exception as e: raise
    FormatError(e)` anticipates no missing module (one of ImportError that
    raises a friendly error does: an extra). Imported late in two modules and
    never guarded, it is a dependency the package imports late."""
    body = "def convert(obj):\n    try:\n        from genson import SchemaBuilder\n        return SchemaBuilder()\n"
    broad = body + "    except Exception as exc:\n        raise ValueError(exc) from exc\n"
    friendly = body + "    except ImportError as exc:\n        raise ImportError('pip install genson') from exc\n"
    mod = "def other():\n    import genson\n    return genson\n"
    for handler, section in ((broad, "required"), (friendly, "optional")):
        lib = {"pkg/__init__.py": "from . import conv, other\n", "pkg/conv.py": handler, "pkg/other.py": mod}
        res = scan(write(tmp_path / section, lib))
        assert "genson" in getattr(res, section), (section, res.required, res.optional, res.on_demand)


# 4 ---------------------------------------------------------------- branches


def test_branches_on_arguments_settings_env_and_data_do_not_demote_script_imports(tmp_path: Path) -> None:
    code = (
        "import argparse, os, importlib.util, contextlib\n"
        "args = argparse.ArgumentParser().parse_args()\n"
        "if args.mode == 'plot':\n    import matplotlib.pyplot as plt\n"
        "with_cache = args.cache\nif with_cache:\n    import requests_cache\n"
        "if os.environ.get('USE_GPU'):\n    import cupy\n"
        "if 'parquet' in args.format:\n    import pyarrow\n"
        "if args.wandb:\n    import wandb\n"
        "HAS_TQDM = importlib.util.find_spec('tqdm') is not None\n"
        "if HAS_TQDM:\n    import tqdm\n"
        "try:\n    import ujson as json\nexcept ImportError:\n    import json\n"
        "with contextlib.suppress(ImportError):\n    import orjson\n"
        "if importlib.util.find_spec('rich'):\n    import rich\n"
    )
    res = scan(write(tmp_path, {"run.py": code}))
    assert res.required == {"matplotlib-base", "requests-cache", "cupy", "pyarrow", "wandb"}
    assert res.optional == {"tqdm", "ujson", "orjson", "rich"}, "only ImportError-style guards make optional"


def test_a_branch_on_a_flag_an_import_guard_set_is_guarded_like_the_try(tmp_path: Path) -> None:
    """`try: import google.colab; IN_COLAB = True / except ImportError: IN_COLAB
    = False`, then `if IN_COLAB:` runs only where the guarded import worked (on
    Colab, never on the target): its imports are optional, as if written in the
    try, whatever the flag is called, and either way round (`if not ON_TARGET:`).
    The other branch is what runs on the target: required. So is the branch
    when the guarded import always works there (a package the project imports
    unguarded elsewhere, its own module). A flag the handler does not set the
    other way, or a try of standard-library imports only (a Python-version
    switch), guards nothing."""
    code = (
        "try:\n    import google.colab\n    IN_COLAB = True\nexcept ImportError:\n    IN_COLAB = False\n"
        "if IN_COLAB:\n    import gdown\n    import subprocess\n"
        "    subprocess.check_call(['python', '-m', 'pip', 'install', 'geemap'])\n"
        "else:\n    import pandas\n"
        "try:\n    import condacolab\nexcept ImportError:\n    ON_TARGET = True\nelse:\n    ON_TARGET = False\n"
        "if not ON_TARGET:\n    import pyngrok\nelse:\n    import numpy\n"
        "try:\n    import tqdm\n    ready = True\nexcept ImportError:\n    pass\n"
        "if ready:\n    import scipy\n"
        "try:\n    import tomllib\n    NEW = True\nexcept ImportError:\n    NEW = False\n"
        "if NEW:\n    import yaml\n"
        "try:\n    import xarray\n    XR = True\nexcept ImportError:\n    XR = False\n"
        "if XR:\n    import netCDF4\n"
        "try:\n    import helpers\n    LOCAL = True\nexcept ImportError:\n    LOCAL = False\n"
        "if LOCAL:\n    import seaborn\n"
    )
    # tests that a module is loaded are such flags too
    loaded = (
        "import sys\nON_COLAB = 'google.colab' in sys.modules\nif ON_COLAB:\n    import gradio\n"
        "if 'google.colab' in str(get_ipython()):\n    import ipyleaflet\n"
        "if 'kaggle_secrets' not in sys.modules:\n    import polars\nelse:\n    import kagglehub\n"
    )
    # xarray is imported unguarded elsewhere, helpers is the project's own: both always
    # import on the target, so the branches on their flags run there
    res = scan(write(tmp_path, {"nb.py": code, "other.py": "import xarray\n", "helpers.py": "", "kg.py": loaded}))
    assert {"gdown", "pip", "pyngrok", "condacolab", "tqdm"} <= res.optional, res.optional
    assert {"gradio", "ipyleaflet", "kagglehub"} <= res.optional, res.optional
    assert res.required == {"pandas", "numpy", "scipy", "pyyaml", "xarray", "netcdf4", "seaborn-base", "polars"}, (
        res.required
    )


def test_settings_picked_backends_stay_optional_in_packages(tmp_path: Path) -> None:
    proj = write(
        tmp_path,
        {
            "pkg/__init__.py": "from . import io\n",
            "pkg/io.py": (
                "import os\nif os.environ.get('PKG_GPU'):\n    import cupy\nif use_cache:\n    import diskcache\n"
            ),
        },
    )
    assert scan(proj).optional == {"cupy", "diskcache"}


def test_modules_a_setting_picks_are_not_loaded_with_the_package(tmp_path: Path) -> None:
    """`if backend() == "jax": from pkg.backend.jax import *`: the backend
    modules (and what only they load) run only when the setting picks them,
    so their module-level imports are not required by the package."""
    proj = write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg import backend\n",
            "pkg/backend/__init__.py": (
                "from pkg.backend.config import backend\n"
                "if backend() == 'jax':\n    from pkg.backend.jax import *\n"
                "elif backend() == 'numpy':\n    from .numpy import *\n"
            ),
            "pkg/backend/config.py": "import numpy\ndef backend():\n    return 'numpy'\n",
            "pkg/backend/jax/__init__.py": "from pkg.backend.jax.core import *\n",
            "pkg/backend/jax/core.py": "import jax\n",
            "pkg/backend/numpy/__init__.py": "import scipy\n",
            "app.py": "import pkg\nif mode == 'fast':\n    import numba\n",
        },
    )
    res = scan(proj)
    assert "numpy" in res.required and "numba" in res.required, "a script's branches stay required"
    assert not {"jax", "scipy"} & res.required, res.required


def test_a_folder_named_after_what_it_imports_is_an_integration(tmp_path: Path) -> None:
    """pkg/contrib/redis/client.py importing redis, not loaded when pkg is
    imported: installed on demand, like pkg/contrib/redis.py would be."""
    proj = write(
        tmp_path,
        {
            "pkg/__init__.py": "import requests\ndef cache():\n    from pkg.contrib.redis import Client\n",
            "pkg/contrib/__init__.py": "",
            "pkg/contrib/redis/__init__.py": "from pkg.contrib.redis.client import Client\n",
            "pkg/contrib/redis/client.py": "import redis\nimport attr\n",
        },
    )
    res = scan(proj)
    assert "requests" in res.required and "attrs" in res.required
    assert "redis-py" in res.on_demand and "redis-py" not in res.required


# 5 ---------------------------------------------------------------- dotted names


def test_dotted_import_of_a_submodule_in_another_package_needs_both(tmp_path: Path) -> None:
    proj = write(
        tmp_path,
        {
            "a.py": "from dask.distributed import Client\nimport dask.dataframe as dd\n"
            "from google.cloud import storage\nfrom google.colab import drive\n"
        },
    )
    res = scan(proj)
    assert {"distributed", "dask-core", "dask"} <= res.required
    assert "google-cloud-storage" in res.required and not any(p.startswith("google-colab") for p in res.required), (
        "namespace parents hold no package; Colab's own modules have none"
    )
    assert res.evidence["distributed"] == {"dask.distributed": ["a.py:1"]}
    assert res.evidence["dask-core"] == {"dask": ["a.py:1", "a.py:2"]}


# 6 ---------------------------------------------------------------- table


def test_import_names_of_the_hand_kept_table(tmp_path: Path) -> None:
    code = "import Bio\nimport fitz\nimport tables\nfrom mpl_toolkits.basemap import Basemap\n"
    code += (
        "import ibis\nimport trx.trx_file_memmap\nfrom pylab import plot\nfrom bokeh.sampledata.iris import flowers\n"
    )
    proj = write(tmp_path, {"a.py": code})
    res = scan(proj)
    assert res.required == {
        "biopython",
        "pymupdf",
        "pytables",
        "basemap",
        "matplotlib-base",
        "ibis-framework",
        "trx-python",
        "bokeh",
        "bokeh_sampledata",
    }
    assert res.unresolved == set()


def test_a_generated_clients_api_version_is_not_part_of_its_package_name(tmp_path: Path) -> None:
    """google.cloud.vision_v1 (and _v1beta2, _v1p3beta1) is a module of google-cloud-vision:
    in a namespace package the API version suffix is stripped before the table lookup and the
    guess, and the import is still the evidence; outside a namespace a `_v2` name is left whole."""
    code = (
        "from google.cloud import vision_v1\nfrom google.cloud import language_v1beta2\n"
        "import google.cloud.vision_v1p3beta1\nimport google.cloud.pubsub_v1\nimport foo_v2\n"
    )
    res = scan(write(tmp_path, {"a.py": code}))
    assert res.required == {"google-cloud-vision", "google-cloud-language", "google-cloud-pubsub", "foo-v2"}, res
    assert set(res.evidence["google-cloud-vision"]) == {"google.cloud.vision_v1", "google.cloud.vision_v1p3beta1"}


def test_import_names_the_pinned_tables_lacked_come_from_the_pypi_snapshot(tmp_path: Path) -> None:
    """Renamed distributions that depfinder's table does not know, named by the
    wheels of the most downloaded PyPI projects (templates/pypi-top-levels.txt):
    no guess of the import name, which no channel has."""
    code = (
        "import upath\nimport amplitude\nfrom grpc_health.v1 import health_pb2\nimport pyro\n"
        "from llama_index.core import VectorStoreIndex\nimport vtkmodules.all\n"
    )
    res = scan(write(tmp_path, {"a.py": code}))
    assert res.required == {
        "universal-pathlib",
        "amplitude-analytics",
        "grpcio-health-checking",
        "pyro-ppl",
        "llama-index-core",
        "vtk",
    }
    assert res.unresolved == set()


def test_a_hand_kept_top_name_does_not_hide_the_generated_rows_below_it(tmp_path: Path) -> None:
    """templates/import-map.yml maps `opentelemetry` to opentelemetry-api; the
    generated table's longer key `opentelemetry.instrumentation.requests` is
    another package and wins. The project's own `imports:` win outright."""
    code = "from opentelemetry import trace\nfrom opentelemetry.instrumentation.requests import RequestsInstrumentor\n"
    proj = write(tmp_path, {"a.py": code})
    assert scan(proj).required == {"opentelemetry-api", "opentelemetry-instrumentation-requests"}
    assert scan(proj, imports={"opentelemetry": "my-otel"}).required == {"my-otel"}


# 7 ---------------------------------------------------------------- parsing


def test_a_magic_as_the_only_body_of_a_block_parses(tmp_path: Path) -> None:
    src = "if missing:\n    %time f()\nfor f in files:\n    !wc -l {f}\n    # why?\nimport yaml\n"
    assert cell_source(src) == (  # a shell line is IPython's own translation of it
        "if missing:\n    pass\nfor f in files:\n    get_ipython().system('wc -l {f}')\n    # why?\nimport yaml"
    )
    res = scan(write(tmp_path, {"nb.ipynb": notebook(src, "def f():\n    x = 1\n    %timeit f()\n")}))
    assert res.unparsed == [] and res.required == {"pyyaml"}


def test_a_namespace_folder_no_package_is_known_by_is_the_projects_own(tmp_path: Path) -> None:
    """`from mylab import models` where mylab/ is a folder of the project
    without __init__.py (a namespace package run from the project root) and
    no conda package is known by that name: local code, not a package."""
    proj = write(
        tmp_path,
        {
            "mylab/train.py": "import numpy\nfrom mylab import models, evaluate\nfrom mylab.serve import app\n",
            "mylab/config.py": "",
            "numpy/readme.ipynb": notebook("import numpy\n"),
        },
    )
    res = scan(proj)
    assert "mylab" not in res.required | res.on_demand | res.optional
    assert "numpy" in res.required, "a known package is never hidden by a folder"


def test_an_old_style_namespace_init_does_not_make_the_namespace_the_projects(tmp_path: Path) -> None:
    """opencensus/__init__.py that only declares a namespace (pkg_resources or
    pkgutil): `opencensus.trace` is another distribution's, and the modules of
    the project's own package below it are entry points as a top-level
    package's are."""
    ns = "__import__('pkg_resources').declare_namespace(__name__)\n"
    pkgutil = "from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n"
    proj = write(
        tmp_path,
        {
            "opencensus/__init__.py": ns,
            "opencensus/ext/__init__.py": pkgutil,
            "opencensus/ext/azure/__init__.py": "",
            "opencensus/ext/azure/common/__init__.py": "",
            "opencensus/ext/azure/common/transport.py": "import requests\nimport psutil\n",
            "opencensus/ext/azure/trace_exporter/__init__.py": "from opencensus.trace import span\n"
            "from opencensus.ext.azure.common.transport import T\n",
        },
    )
    res = scan(proj)
    assert {"opencensus", "requests", "psutil"} <= res.required, (res.required, res.on_demand)


def test_a_code_less_folder_mirroring_a_known_namespace_is_no_sys_path_root(tmp_path: Path) -> None:
    """llama_index/indices/managed/llama_cloud/ (a namespace distribution's
    package): nothing runs from llama_index/indices/managed/, so its
    llama_cloud/ does not hide the llama-cloud package; a folder of scripts
    still is a root (scripts/helpers.py beside scripts/run.py)."""
    proj = write(
        tmp_path,
        {
            "llama_index/indices/managed/llama_cloud/__init__.py": "from llama_cloud.lib.index import base\n",
            "scripts/run.py": "import helpers\n",
            "scripts/helpers.py": "",
        },
    )
    res = scan(proj)
    assert "llama-cloud" in res.required and "helpers" not in res.required


def test_a_table_of_module_names_beside_distribution_names_loads_nothing(tmp_path: Path) -> None:
    """Dotted paths into a namespace package in a list are modules loaded by
    name (an extension list) unless the list also holds strings no module is
    named: then it is a table of names the code compares with."""
    proj = write(
        tmp_path,
        {
            "conf.py": 'extensions = ["sphinxcontrib.jsmath", "sphinx.ext.autodoc"]\n',
            "mylib/__init__.py": "from mylib import consts\n",
            "mylib/consts.py": 'SUPPORTED = (\n    "opentelemetry.instrumentation.flask",\n'
            '    "opentelemetry-instrumentation-tornado",\n)\n',
        },
    )
    res = scan(proj)
    installed = res.required | res.on_demand | res.optional
    assert "sphinxcontrib-jsmath" in res.required
    assert not any(p.startswith("opentelemetry") for p in installed), installed


def test_a_table_of_module_and_class_pairs_loads_each_on_first_use(tmp_path: Path) -> None:
    """`("azure.mgmt.storage", "StorageManagementClient")` entries of a table
    of clients (an Enum of resource types) name the class each entry loads
    when used: on demand in a package, not a dependency of every import; a
    plain list of module paths (an extension list) is still loaded."""
    proj = write(
        tmp_path,
        {
            "mylib/__init__.py": "from mylib import profiles\n",
            "mylib/profiles.py": (
                "from enum import Enum\n\nclass ResourceType(Enum):\n"
                "    MGMT_STORAGE = ('azure.mgmt.storage', 'StorageManagementClient')\n"
                "    DATA_BATCH = ('azure.batch', None)\n"
                "EXTENSIONS = ['sphinxcontrib.jsmath']\n"
            ),
        },
    )
    res = scan(proj)
    assert {"azure-mgmt-storage", "azure-batch"} <= res.on_demand, (res.required, res.on_demand)
    assert not {"azure-mgmt-storage", "azure-batch"} & res.required
    assert "sphinxcontrib-jsmath" in res.required


def test_only_a_line_that_starts_a_statement_is_a_magic(tmp_path: Path) -> None:
    """A `%` line inside open brackets is the modulo operator, a `?` line
    inside a triple-quoted string is text, a line after a backslash continues
    the statement: Python, as IPython reads them, not magics."""
    python = 'print(\n    "%4.2f%%"\n    % tuple(x)\n)\ny = 1 + \\\n    %d\ns = """Why?\n!not a shell line\n"""\n'
    src = python + "%time f()\nnp.mean?\n"
    assert cell_source(src) == python + "pass\npass"
    res = scan(
        write(tmp_path, {"nb.ipynb": notebook("import numpy as np\nx = (1,\n     2)\n" + src.replace("%d", "2"))})
    )
    assert res.unparsed == [] and res.required == {"numpy"}


# library rules (code inside the project's packages) ----------------------


def test_a_package_module_with_a_main_block_that_the_package_imports_is_library_code(tmp_path: Path) -> None:
    """A module of a package that other modules of the package import is
    library code even with an `if __name__ == "__main__":` demo: its lazy
    imports are on demand. A package module that only runs as a program
    (nothing imports it) stays a script: its lazy imports are required."""
    proj = write(
        tmp_path,
        {
            "lib/__init__.py": "from .graph import Graph\n",
            "lib/graph.py": (
                "class Graph:\n    def to_nx(self):\n        import networkx\n        return networkx.DiGraph()\n"
                "\nif __name__ == '__main__':\n    Graph().to_nx()\n"
            ),
            "lib/train.py": "def run():\n    import wandb\n\nif __name__ == '__main__':\n    run()\n",
        },
    )
    res = scan(proj)
    assert "networkx" in res.on_demand and "networkx" not in res.required
    assert "wandb" in res.required, "a module only run as a program is application code"


def test_plugins_found_by_listing_their_folder_are_loaded(tmp_path: Path) -> None:
    """A package that loads every module of its folder (pkgutil.iter_modules(__path__),
    register_plugins(linter, dirname(__file__)), a listing of its folder with
    import_module) reaches them all: their imports are needed. Reading a data
    file beside the module loads no module."""
    proj = write(
        tmp_path,
        {
            "app/__init__.py": "from app import plugins, checkers, data\n",
            "app/plugins/__init__.py": (
                "import importlib, pkgutil\n"
                "for m in pkgutil.iter_modules(__path__):\n    importlib.import_module(f'{__name__}.{m.name}')\n"
            ),
            "app/plugins/slack.py": "import slack_sdk\n",
            "app/checkers/__init__.py": (
                "import os\nfrom app.util import register_plugins\n\ndef initialize(linter):\n"
                "    register_plugins(linter, os.path.dirname(__file__))\n"
            ),
            "app/checkers/spelling.py": "import enchant\n",
            "app/util.py": "def register_plugins(linter, folder):\n    pass\n",
            "app/data/__init__.py": (
                "import json, os\nTABLE = json.load(open(os.path.join(os.path.dirname(__file__), 't.json')))\n"
            ),
            "app/data/_extra.py": "import h5py\n",
        },
    )
    res = scan(proj)
    assert {"slack-sdk", "pyenchant"} <= res.required, res.required
    assert "h5py" in res.optional and "h5py" not in res.required | res.on_demand


def test_a_plugin_manager_listing_a_folder_below_its_own_loads_what_is_there(tmp_path: Path) -> None:
    """apprise's managers: `module_path = join(abspath(dirname(__file__)),
    _id)` (the folder named in a subclass), then `os.listdir(self.module_path)`
    and `__import__` of each name: the modules below the manager's folder are
    loaded, so their imports are needed. A manager that lists only its own
    folder loads no subfolder."""
    manager = (
        "import os\nfrom os.path import abspath, dirname, join\n\nclass Manager:\n"
        "    _id = None\n    module_path = join(abspath(dirname(__file__)), _id)\n\n"
        "    def load(self):\n        for f in os.listdir(self.module_path):\n"
        "            __import__(f'app.{self._id}.{f[:-3]}')\n"
    )
    own = (
        "import os\n\nHERE = os.path.dirname(__file__)\n\ndef load():\n"
        "    for f in os.listdir(HERE):\n        __import__(f'lib.{f[:-3]}')\n"
    )
    proj = write(
        tmp_path,
        {
            "app/__init__.py": "from app import manager\n",
            "app/manager.py": manager,
            "app/plugins/__init__.py": "",
            "app/plugins/slack.py": "import slack_sdk\n",
            "lib/__init__.py": "from lib import loader\n",
            "lib/loader.py": own,
            "lib/mail.py": "import yaml\n",
            "lib/sub/__init__.py": "",
            "lib/sub/_deep.py": "import h5py\n",
        },
    )
    res = scan(proj)
    assert {"slack-sdk", "pyyaml"} <= res.required, res.required
    assert "h5py" not in res.required | res.on_demand


def test_a_module_given_to_a_lazy_loader_loads_on_first_use(tmp_path: Path) -> None:
    """`tf = LazyModule("tensorflow")` / `LazyLoader(...)` / `_LazyImport("torch")`
    import the module on first use: needed by a script, on demand in a package's
    inner module (a dotted namespace path too); `lazy_gettext("Name")` is a
    translation, not a module."""
    proj = write(
        tmp_path,
        {
            "run.py": "from lazy import LazyModule\ntf = LazyModule('tensorflow')\n",
            "lib/__init__.py": "from lib import utils\n",
            "lib/utils.py": (
                "from lib._lazy import _LazyImport, lazy_gettext\n"
                "torch = _LazyImport('torch')\nocp = _LazyImport('google.cloud.storage')\n"
                "label = lazy_gettext('Name')\n"
            ),
            "lib/_lazy.py": "",
            "lazy.py": "",
        },
    )
    res = scan(proj)
    assert "tensorflow" in res.required
    assert {"pytorch", "google-cloud-storage"} <= res.on_demand, res.on_demand
    assert not {"name", "Name"} & (res.required | res.on_demand | res.optional | res.unresolved)


def test_backends_named_in_a_registry_of_alternatives_are_picked_by_a_setting(tmp_path: Path) -> None:
    """A dict of "name": "pkg.mod:Class" entries (kombu's TRANSPORT_ALIASES,
    uvicorn's HTTP_PROTOCOLS) lists backends a setting picks: in a package,
    modules reached only through it import optionally; its "auto"/"default"
    entry is the one used when no setting names another."""
    proj = write(
        tmp_path,
        {
            "mq/__init__.py": "from mq.config import load\n",
            "mq/config.py": (
                "BACKENDS = {\n    'redis': 'mq.backends.redis_b:Backend',\n"
                "    'mongo': 'mq.backends.mongo_b:Backend',\n    'auto': 'mq.backends.auto:Backend',\n}\n"
                "def load(name='auto'):\n    return BACKENDS[name]\n"
            ),
            "mq/backends/__init__.py": "",
            "mq/backends/redis_b.py": "import redis\n",
            "mq/backends/mongo_b.py": "import pymongo\n",
            "mq/backends/auto.py": "import requests\n",
        },
    )
    res = scan(proj)
    assert {"redis-py", "pymongo"} <= res.optional and not {"redis-py", "pymongo"} & res.required, res
    assert "requests" in res.required


def test_a_module_imported_only_in_functions_needs_its_friendly_error_imports_late(tmp_path: Path) -> None:
    """`try: import cartopy / except ImportError: raise ImportError("install
    Cartopy")` in a module the package imports only inside a function
    (`def add_borders(): from ._geo import x`): an optional dependency of
    that function (the author anticipates its absence), not needed to load
    the package; the same guard in a module loaded with the package is
    needed to load it."""
    guard = "try:\n    import {0}\nexcept ImportError as e:\n    raise ImportError('install {0}') from e\n"
    proj = write(
        tmp_path,
        {
            "plots/__init__.py": "from plots.figure import Figure\n",
            "plots/figure.py": "from plots import _style\n\nclass Figure:\n    def add_borders(self):\n"
            "        from plots._geo import borders\n        return borders()\n",
            "plots/_geo.py": guard.format("cartopy") + "def borders():\n    pass\n",
            "plots/_style.py": guard.format("cycler"),
        },
    )
    res = scan(proj)
    assert "cartopy" in res.optional | res.on_demand and "cartopy" not in res.required
    assert "cycler" in res.required


def test_a_friendly_import_error_in_a_module_the_package_does_not_load_is_on_demand(tmp_path: Path) -> None:
    """The same guard in a module that the package does not load when it is
    imported (an integration named in a string registry, sentry-sdk's
    `"sdk.integrations.celery.CeleryIntegration"`; a module users import
    themselves, starlette/templating.py) is that feature's dependency:
    installed on demand, not required; in a module the package loads it is
    required, and so is an unguarded import of the not-loaded module."""
    guard = "try:\n    import {0}\nexcept ImportError:\n    raise DidNotEnable('{0} is not installed')\n"
    proj = write(
        tmp_path,
        {
            "sdk/__init__.py": "from sdk import client\n",
            "sdk/client.py": guard.format("urllib3") + "AUTO = ['sdk.integrations.celery.CeleryIntegration']\n",
            "sdk/integrations/__init__.py": "",
            "sdk/integrations/celery.py": guard.format("kombu") + "import wrapt\n\nclass CeleryIntegration: ...\n",
            "sdk/templating.py": guard.format("jinja2"),
        },
    )
    res = scan(proj)
    assert {"kombu", "jinja2"} <= res.on_demand and not {"kombu", "jinja2"} & res.required, res
    assert {"urllib3", "wrapt"} <= res.required


def test_an_import_error_kept_to_raise_later_is_no_fallback(tmp_path: Path) -> None:
    """`except ImportError as e: invoke_import_error = e` keeps the error to
    raise it where the module is used: the code needs it (paramiko's invoke);
    a handler that also sets a fallback value stays optional."""
    proj = write(
        tmp_path,
        {
            "tool.py": (
                "invoke, invoke_import_error = None, None\ntry:\n    import invoke\n"
                "except ImportError as e:\n    invoke_import_error = e\n"
                "try:\n    import lxml\nexcept ImportError as e:\n    lxml = None\n    err = e\n"
            ),
        },
    )
    res = scan(proj)
    assert "invoke" in res.required
    assert "lxml" in res.optional and "lxml" not in res.required


def test_a_package_that_loads_none_of_its_modules_is_loaded_by_name(tmp_path: Path) -> None:
    """A plugin or theme package (mkdocs-material: an empty material/__init__.py,
    material/plugins/blog/plugin.py loaded by mkdocs through the entry points
    of its metadata) reaches none of its own modules: all of them load. A
    package that reaches some keeps its unreached backends out of its
    requirements: installed on demand (a user may import host.transport.sqs),
    not required."""
    proj = write(
        tmp_path,
        {
            "theme/__init__.py": "",
            "theme/plugins/__init__.py": "",
            "theme/plugins/blog/__init__.py": "",
            "theme/plugins/blog/plugin.py": "from mkdocs.plugins import BasePlugin\nimport paginate\n",
            "host/__init__.py": "from host import core\n",
            "host/core.py": "import requests\n",
            "host/transport/__init__.py": "",
            "host/transport/sqs.py": "import boto3\n",
        },
    )
    res = scan(proj)
    assert {"mkdocs", "paginate", "requests"} <= res.required, res.required
    assert "boto3" in res.on_demand and "boto3" not in res.required


def test_an_import_named_like_a_renamed_pypi_project_is_no_guess(tmp_path: Path) -> None:
    """`import torch`: no import table lists it, but the PyPI -> conda rename
    table does (torch is pytorch): a known package, not an unresolved guess
    with a warning; an import no table knows still is one."""
    res = scan(write(tmp_path, {"a.py": "import torch\nimport zqxw_unknown\n"}))
    assert {"pytorch", "zqxw-unknown"} <= res.required
    assert res.unresolved == {"zqxw-unknown"}
    assert not [m for _k, m in res.warnings if "'torch'" in m]


def test_an_import_spelled_like_a_package_the_tables_name_is_that_package(tmp_path: Path) -> None:
    """`%load_ext nb_black`: no table maps the import nb_black, but the
    repository map names the conda package nb_black (for lab_black): that
    package, spelled as the channel spells it, not the guess nb-black (which
    no channel has) with a warning; an import no table names still is a guess."""
    res = scan(write(tmp_path, {"a.py": "import nb_black\nimport zqxw_unknown\n"}))
    assert "nb_black" in res.required and "nb-black" not in res.required, res.required
    assert res.unresolved == {"zqxw-unknown"}, res.unresolved


def test_a_private_top_level_module_is_its_public_package(tmp_path: Path) -> None:
    """`import _pytest` / `from _yaml import CParser`: a private top-level
    module ships with the package of its public name, or of its name's first
    word (never "-pytest", which no channel has); the project's own private
    modules stay local."""
    proj = write(
        tmp_path,
        {
            "lib/__init__.py": (
                "import _pytest.config\nfrom _yaml import CParser\nimport _helpers\nimport _thread\n"
                "from _plotly_utils.utils import PlotlyJSONEncoder\nimport _zqxw_private\n"
            ),
            "lib/_helpers.py": "",
        },
    )
    res = scan(proj)
    assert {"pytest", "pyyaml", "plotly"} <= res.required, "_plotly_utils: of its first word's package"
    assert not {p for p in res.required | res.unresolved if p.startswith("-") or "helpers" in p or "thread" in p}
    assert "zqxw-private" in res.unresolved, "an unknown one is guessed without its underscore"


def test_import_names_missing_from_the_generated_table_are_mapped(tmp_path: Path) -> None:
    """Import names whose conda package is named otherwise and that the
    pinned table lacks (templates/import-map.yml): `proto` is proto-plus,
    `osgeo` is gdal, `haiku` dm-haiku, `orbax.checkpoint` (a namespace) orbax-checkpoint."""
    code = "import proto\nfrom osgeo import gdal\nimport haiku as hk\nimport orbax.checkpoint as ocp\n"
    res = scan(write(tmp_path, {"a.py": code}))
    assert res.required == {"proto-plus", "gdal", "dm-haiku", "orbax-checkpoint"} and not res.unresolved


def test_a_module_named_after_what_it_imports_wraps_the_installed_package(tmp_path: Path) -> None:
    """flake8/plugins/pycodestyle.py: `from pycodestyle import ...` is the
    installed package (absolute imports), not the file importing itself;
    a real Python-2 style sibling import beside it stays local."""
    proj = write(
        tmp_path,
        {
            "lint/__init__.py": "from lint.plugins import pycodestyle, helpers\n",
            "lint/plugins/__init__.py": "",
            "lint/plugins/pycodestyle.py": "from pycodestyle import bare_except\nimport helpers\n",
            "lint/plugins/helpers.py": "",
        },
    )
    res = scan(proj)
    assert "pycodestyle" in res.required
    assert "helpers" not in res.required | res.on_demand | res.optional


def test_a_distribution_looked_up_by_name_must_be_installed(tmp_path: Path) -> None:
    """importlib.metadata.version("x") / distribution("x") /
    pkg_resources.require("x>=1") fail when x is missing: the package is
    needed where the call runs, optional under a try, and the project's own
    name is not a dependency."""
    proj = write(
        tmp_path,
        {
            "tool.py": (
                "import importlib.metadata\nfrom importlib.metadata import version as v, PackageNotFoundError\n"
                "import pkg_resources\n"
                "print(importlib.metadata.distribution('pyflakes').metadata, v('Pillow'))\n"
                "pkg_resources.require('python-dateutil>=2.8')\n"
                "try:\n    v('ujson')\nexcept PackageNotFoundError:\n    pass\n"
                "print(v('tool'), version('not-from-metadata'))\n"
            ),
        },
    )
    res = scan(proj)
    assert {"pyflakes", "pillow", "python-dateutil"} <= res.required
    assert "ujson" in res.optional and "ujson" not in res.required
    assert not {"tool", "not-from-metadata", "not_from_metadata"} & (res.required | res.on_demand | res.optional)


def test_a_package_reading_its_own_version_is_not_its_own_dependency(tmp_path: Path) -> None:
    """`metadata.version("python-keycloak")` in keycloak/_version.py asks for
    the project's own distribution, which the table names for its top-level
    package (keycloak: python-keycloak; here also a settings entry): not a
    dependency. Another distribution's name still is, even one that starts
    with the project's name."""
    proj = write(
        tmp_path,
        {
            "keycloak/__init__.py": "from keycloak._version import __version__\nimport mytool\n",
            "keycloak/_version.py": (
                "from importlib import metadata\n__version__ = metadata.version('python-keycloak')\n"
                "TOOL = metadata.version('py-mytool')\nPLUG = metadata.version('python-keycloak-plugins')\n"
                "FLAKES = metadata.version('pyflakes')\n"
            ),
            "mytool/__init__.py": "",
        },
    )
    res = scan(proj, imports={"mytool": "py-mytool"})
    assert "pyflakes" in res.required and "python-keycloak-plugins" in res.required
    assert not {"python-keycloak", "py-mytool"} & (res.required | res.on_demand | res.optional)


def test_a_distribution_looked_up_in_a_package_function_is_needed_unless_it_may_fail(tmp_path: Path) -> None:
    """A lookup by name is no lazy import: unguarded in a function of an inner
    module (flake8 reads pyflakes' metadata when it lists its plugins) the
    package is needed; the lookup in the handler of a failed one is its
    fallback (the project under another name), optional."""
    proj = write(
        tmp_path,
        {
            "lint/__init__.py": "from lint.plugins import finder\n",
            "lint/plugins/__init__.py": "",
            "lint/plugins/finder.py": (
                "import importlib.metadata\n\ndef plugins():\n"
                "    return importlib.metadata.distribution('pyflakes').metadata\n\n"
                "def deps():\n    try:\n        return importlib.metadata.requires('lint')\n"
                "    except importlib.metadata.PackageNotFoundError:\n"
                "        return importlib.metadata.requires('lint-skinny')\n"
            ),
        },
    )
    res = scan(proj)
    assert "pyflakes" in res.required
    assert "lint-skinny" not in res.required | res.on_demand


def test_the_functions_of_a_top_level_package_init_are_its_api(tmp_path: Path) -> None:
    """A Sphinx extension's `def setup(app)` in mytheme/__init__.py runs
    whenever the package is used: its imports are required; a function of
    an inner module still imports on demand."""
    proj = write(
        tmp_path,
        {
            "mytheme/__init__.py": (
                "def setup(app):\n    app.setup_extension('sphinxcontrib.jquery')\n"
                "    from sphinxcontrib.jquery import add_js_files\n    import docutils\n"
            ),
            "mytheme/io.py": "def to_hdf5():\n    import h5py\n",
        },
    )
    res = scan(proj)
    assert {"sphinxcontrib-jquery", "docutils"} <= res.required
    assert "h5py" in res.on_demand and "h5py" not in res.required


def test_modules_run_with_python_dash_m_must_be_installed(tmp_path: Path) -> None:
    """`python -m x` in a notebook's shell line or bash cell, `%run -m x`,
    `[sys.executable, "-m", "x"]` and "python -m x" command strings run x
    on the target; text that only mentions it and other programs' -m do not."""
    proj = write(
        tmp_path,
        {
            "nb.ipynb": notebook(
                "import os\n!python -m spacy download en_core_web_sm\nif os.name:\n    !{sys.executable} -m black .\n",
                "%%bash\ncd data && python3.11 -u -m nbconvert --to html a.ipynb\n",
                "%run -m papermill a.ipynb b.ipynb\n",
            ),
            "run.py": (
                "import os, subprocess, sys\n"
                "subprocess.check_call([sys.executable, '-u', '-m', 'jupytext', '--sync'])\n"
                "os.system('python -m pylint src')\n"
                "subprocess.run(f'{sys.executable} -m isort .', shell=True)\n"
                "def make_env():\n    return ('python3', '-mvirtualenv', 'env')\n"
                "subprocess.run(['git', 'commit', '-m', 'flake8'])\n"
                "subprocess.run([sys.executable, '-m', 'venv', 'env'])\n"
                "print('python -m notinstalled')\n"
            ),
        },
    )
    res = scan(proj)
    wanted = {
        "spacy",
        "black",
        "nbconvert",
        "papermill",
        "jupytext",
        "pylint",
        "isort",
        "virtualenv",
    }
    assert wanted <= res.required, wanted - res.required
    assert not {"flake8", "notinstalled", "venv"} & (
        res.required | res.on_demand | res.optional
    )


@pytest.mark.parametrize(
    ("command", "names"),
    [
        ("pip install gdown", ["gdown"]),
        ("pip3 install -q -U 'transformers[torch]>=4.30' datasets==2.14", ["transformers", "datasets"]),
        ("{sys.executable} -m pip install --quiet kaleido", ["kaleido"]),
        ("python -m pip install -r requirements.txt -e . openpyxl", ["openpyxl"]),
        ("uv pip install polars", ["polars"]),
        ("conda install -y -c conda-forge cartopy conda-forge::xesmf", ["cartopy", "xesmf"]),
        ("mamba install -n base --file env.txt netcdf4=1.6", ["netcdf4"]),
        ("pip install -U pip setuptools wheel", []),
        ("pip install ./pkg git+https://github.com/x/y.git https://x.org/z.whl y-1.0.tar.gz", []),
        ("pip install $PKG {pkgs} ~/src/lib", []),
        ("pip install seaborn; rm -rf data && ls > out.txt", ["seaborn"]),
        ("pip install 'unclosed", ["unclosed"]),
        ("pip show numpy", []),
        ("echo see pip documentation", []),
    ],
)
def test_install_commands_name_the_distributions_they_install(command: str, names: list[str]) -> None:
    assert install_names(command) == names


def test_a_notebook_that_installs_a_package_needs_it_on_the_target(tmp_path: Path) -> None:
    """`!pip install x` / `%pip install x` / `!conda install x` (also in a
    %%bash cell and in an exported script) name what the notebook needs
    where there may be no network to install it: required, under its conda
    name; under a guard the branch's imports would be optional, so are its
    installs; a commented line installs nothing. An `except ImportError:`
    that installs the module is no fallback: the import is required."""
    proj = write(
        tmp_path,
        {
            "nb.ipynb": notebook(
                "!pip install -q gdown 'opencv-python>=4' scikit-learn torch\n%pip install --upgrade pip kaleido\n",
                "%conda install -c conda-forge cartopy\n",
                "%%bash\nset -e\npip install pyarrow\n",
                "try:\n    import google.colab\n    IN_COLAB = True\nexcept ImportError:\n    IN_COLAB = False\n"
                "if IN_COLAB:\n    !pip install colab-only-helper\n",
                "# !pip install commented-out\nimport numpy\n",
                "try:\n    import wget\nexcept ModuleNotFoundError:\n    %pip install wget\n",
                "try:\n    import seaborn\nexcept ImportError:\n"
                "    print('for plots: pip install seaborn')\n    seaborn = None\n",
            ),
            "export.py": "get_ipython().run_line_magic('pip', 'install plotly')\n"
            "get_ipython().system('pip install -q openpyxl')\n",
            "setup_env.py": "import subprocess, sys\n"
            "try:\n    import rich\nexcept ImportError:\n"
            "    subprocess.check_call([sys.executable, '-m', 'pip', 'install', 'rich'])\n",
        },
    )
    res = scan(proj)
    wanted = {"gdown", "opencv", "python-kaleido", "cartopy", "pyarrow", "plotly", "openpyxl", "numpy"}
    wanted |= {"scikit-learn", "pytorch"}  # PyPI names, as conda names them
    assert wanted <= res.required, wanted - res.required
    assert not wanted & res.unresolved, "a PyPI name a table knows is no guess"
    assert res.evidence["scikit-learn"] == {"install:scikit-learn": ["nb.ipynb[1]:1"]}
    assert {"python-wget", "rich"} <= res.required, "a handler that installs the module is no fallback"
    assert "seaborn-base" in res.optional
    assert "colab-only-helper" in res.optional and "colab-only-helper" not in res.required
    assert "commented-out" not in res.required | res.optional | res.on_demand
    assert res.evidence["pip"] == {"pip": ["setup_env.py:5"]}, "pip runs as `-m pip`; `install -U pip` is no need"


def test_a_program_a_notebook_or_script_runs_needs_its_package(tmp_path: Path) -> None:
    """`!kaggle datasets download ...`, `!jupyter nbconvert ...` (jupyter runs
    jupyter-nbconvert), a %%bash cell, `files = !cmd`, `subprocess.run(["gdown",
    ...])` and `os.system("papermill ...")` run a package's program (its console
    script): on the target it must be in bin/. The base system's programs (ls,
    git, unzip, python) and local scripts need nothing; a message that names a
    program runs nothing."""
    proj = write(
        tmp_path,
        {
            "nb.ipynb": notebook(
                "!kaggle datasets download -d user/data && unzip data.zip\n!ls -la | wc -l\n",
                "!jupyter nbconvert --to html report.ipynb\nout = !git log -1\n!./run.sh\n",
                "%%bash\nset -e\ntensorboard --logdir runs &\n",
            ),
            "fetch.py": "import os, subprocess\n"
            "subprocess.run(['gdown', '--id', '1abc'], check=True)\n"
            "os.system('papermill in.ipynb out.ipynb')\n"
            "print('then run: streamlit run app.py')\n",
        },
    )
    res = scan(proj)
    wanted = {"kaggle", "nbconvert", "tensorboard", "gdown", "papermill"}
    assert wanted <= res.required, wanted - res.required
    assert res.evidence["nbconvert"] == {"bin/jupyter-nbconvert": ["nb.ipynb[2]:1"]}, "verify checks bin/ has it"
    assert not {"streamlit", "git", "unzip"} & (res.required | res.optional | res.on_demand)
    assert not res.unresolved
    own = scan(proj, imports={"bin/gdown": "", "bin/kaggle": "kaggle-cli-fork"})  # the project's own say wins
    assert "gdown" not in own.required and {"kaggle-cli-fork", "papermill"} <= own.required


def test_a_package_imported_late_in_several_modules_is_needed(tmp_path: Path) -> None:
    """httpx imports httpcore inside the functions of its transports (to
    load faster): imported late in two or more modules and never guarded, a
    package is a dependency, not an extra; in one module, or guarded
    somewhere, it stays on demand / optional."""
    proj = write(
        tmp_path,
        {
            "web/__init__.py": "from web import client, transport, export\n",
            "web/client.py": "def send():\n    import httpcore\n    import certifi\n",
            "web/transport.py": "def open():\n    import httpcore\n    import h2\n",
            "web/export.py": "def to_hdf5():\n    import h5py\n"
            "def brotli():\n    try:\n        import h2\n    except ImportError:\n        return None\n",
        },
    )
    res = scan(proj)
    assert "httpcore" in res.required
    assert {"certifi", "h5py"} <= res.on_demand and "h2" not in res.required


def test_a_deep_module_counts_toward_the_modules_that_import_a_package_late(tmp_path: Path) -> None:
    """A command module users reach by name (cli/commands/redis/custom.py: deep)
    imports the SDK at its top, and a module the package loads imports it in a
    function: two modules, never guarded, so a dependency (required). A
    package that only deep modules import, even several, stays on demand: a
    backend is no core dependency."""
    proj = write(
        tmp_path,
        {
            "cli/__init__.py": "from cli import core\n",
            "cli/core.py": "def client():\n    import redis_sdk\n",
            "cli/commands/__init__.py": "",
            "cli/commands/redis/__init__.py": "",
            "cli/commands/redis/custom.py": "import redis_sdk\n",
            "cli/commands/kafka/__init__.py": "",
            "cli/commands/kafka/custom.py": "import kafka_sdk\n",
            "cli/commands/kafka/extra.py": "import kafka_sdk\n",
        },
    )
    res = scan(proj, imports={"redis_sdk": "redis-sdk", "kafka_sdk": "kafka-sdk"})
    assert "redis-sdk" in res.required, (res.required, res.on_demand)
    assert "kafka-sdk" in res.on_demand and "kafka-sdk" not in res.required


def test_a_guard_in_vendored_code_does_not_demote_the_hosts_imports(tmp_path: Path) -> None:
    """A vendored copy (pkg/vendor/pympler/) that guards numpy says what its
    authors chose, not what the host package needs: the host's own lazy
    imports of numpy stay on demand, where a guard of the host's would make
    them optional."""
    vendored = "try:\n    import numpy\nexcept ImportError:\n    numpy = None\n"
    lazy = "def to_frame():\n    import numpy\n    return numpy.zeros(1)\n"
    tree = {"app/__init__.py": "from app import frames\n", "app/frames.py": lazy}
    res = scan(write(tmp_path / "v", {**tree, "app/vendor/pympler/asizeof.py": vendored}))
    assert "numpy" in res.on_demand, "guarded only in vendored code: the host's lazy import is on demand"
    res = scan(write(tmp_path / "h", {**tree, "app/sizes.py": vendored}))
    assert "numpy" in res.optional, "guarded in the host's own code: optional"


def test_a_pytest_plugin_package_is_its_own_code(tmp_path: Path) -> None:
    """pytest_*.py beside application code is a test helper (skipped, not
    shipped), but in a pytest plugin package (pytest_playwright/, whose
    __init__.py is empty) the module named for pytest is the plugin itself:
    scanned. Its tests/ folder is still test code."""
    plugin = "import pytest\nfrom playwright.sync_api import Page\nfrom slugify import slugify\n"
    proj = write(
        tmp_path / "plugin",
        {
            "pytest_playwright/__init__.py": "",
            "pytest_playwright/pytest_playwright.py": plugin,
            "pytest_playwright/tests/test_x.py": "import hypothesis\n",
        },
    )
    res = scan(proj)
    assert {"pytest", "playwright", "python-slugify"} <= res.required
    assert "hypothesis" not in res.required | res.optional | res.on_demand
    app = write(tmp_path / "app", {"app.py": "import requests\n", "pytest_fixtures.py": plugin})
    assert scan(app).required == {"requests"}
    assert is_test_path(Path("pytest_fixtures.py")) and is_test_path(Path("pytest_playwright/tests/x.py"))
    assert not is_test_path(Path("pytest_playwright/pytest_playwright.py"))
    assert not is_test_path(Path("src/pytest_django/plugin.py"))


# engines ------------------------------------------------------- calls that load a package

PD = "import pandas as pd\ndf = pd.DataFrame()\n"
ENGINE_CASES = [
    # (code of run.py, packages it needs besides its imports, packages it must not get)
    (PD + 'pd.read_excel("sales.xlsx")\n', {"openpyxl"}, set()),
    (PD + 'pd.read_excel("old.xls")\n', {"xlrd"}, {"openpyxl"}),
    (PD + 'pd.read_excel(path, engine="calamine")\n', {"python-calamine"}, {"openpyxl"}),
    (PD + 'with pd.ExcelWriter("o.xlsx", engine="xlsxwriter") as w:\n    df.to_excel(w)\n', {"xlsxwriter"}, set()),
    (PD + 'df.to_parquet("x.parquet")\n', {"pyarrow"}, set()),
    (PD + 'df.to_parquet("x.parquet", engine="fastparquet")\n', {"fastparquet"}, {"pyarrow"}),
    (PD + 'store = pd.HDFStore("x.h5")\n', {"pytables"}, set()),
    (PD + 'pd.read_html(url, flavor="bs4")\n', {"beautifulsoup4", "html5lib"}, {"lxml"}),
    (PD + 'pd.read_xml("x.xml", parser="etree")\n', set(), {"lxml"}),
    (PD + 'pd.read_csv("x.csv", engine="pyarrow")\n', {"pyarrow"}, set()),
    (PD + 'pd.read_csv("x.csv")\n', set(), {"pyarrow"}),
    (PD + 'print(df.to_markdown())\n', {"tabulate"}, set()),
    (PD + 'df["a"].plot.hist()\n', {"matplotlib-base"}, set()),
    ("import polars as pl\nimport pandas\npl.read_parquet('x.parquet')\n", set(), {"pyarrow"}),
    ("def save(df):\n    df.to_parquet('x.parquet')\n", set(), {"pyarrow"}),
    ("import xarray as xr\nxr.open_dataset('t2m.nc')\n", {"netcdf4"}, set()),
    ("import xarray as xr\nxr.open_dataset('cube.zarr')\n", {"zarr"}, {"netcdf4"}),
    ("import xarray as xr\nxr.open_dataset(p, engine='h5netcdf')\n", {"h5netcdf"}, {"netcdf4"}),
    ("import xarray as xr\nds = xr.open_mfdataset('data/*.nc')\n", {"netcdf4", "dask-core"}, set()),
    ("import xarray as xr\nds = xr.tutorial.load_dataset('air_temperature')\n", {"pooch", "netcdf4"}, set()),
    ("import plotly.express as px\nfig = px.line(x=[1])\nfig.write_image('f.png')\n", {"python-kaleido"}, set()),
    ("import networkx as nx\nnx.draw(nx.path_graph(3))\n", {"matplotlib-base"}, set()),
    (PD + 'pd.read_csv("s3://bucket/sales.csv")\n', {"s3fs"}, set()),
    ("import dask.dataframe as dd\ndd.read_parquet(f'gs://{bucket}/x/')\n", {"gcsfs", "pyarrow"}, set()),
    ("import fsspec\nfs = fsspec.filesystem('abfs')\n", {"adlfs"}, set()),
    ("import fsspec\nwith fsspec.open('simplecache::sftp://h/x') as f:\n    pass\n", {"paramiko"}, set()),
    ("with open('s3://not-fsspec') as f:\n    pass\n", set(), {"s3fs"}),
    ("import sqlalchemy as sa\nsa.create_engine('postgresql://u@h/db')\n", {"psycopg2"}, set()),
    ("from sqlalchemy import create_engine\ncreate_engine('mysql+pymysql://u@h/db')\n", {"pymysql"}, set()),
    ("import sqlalchemy as sa\nsa.create_engine('sqlite:///x.db')\n", set(), {"psycopg2"}),
    (PD + 'pd.read_sql("select 1", "postgresql+psycopg://u@h/db")\n', {"sqlalchemy", "psycopg"}, set()),
    (PD + 'df.to_sql("t", engine)\n', set(), {"sqlalchemy"}),
    ("from tqdm.notebook import tqdm\n", {"ipywidgets"}, set()),
    ("from tqdm.auto import tqdm\n", set(), {"ipywidgets"}),
]


@pytest.mark.parametrize(("code", "needs", "not_needed"), ENGINE_CASES)
def test_a_call_that_loads_a_package_by_name_needs_it(
    tmp_path: Path, code: str, needs: set[str], not_needed: set[str]
) -> None:
    """`pd.read_excel("x.xlsx")` fails on the target without openpyxl although
    no line imports it: a call of the engine table (portable_env.scan.engines)
    is an import of what it loads, picked by engine=, the path's suffix or the
    library's default, when the file imports the call's library; a storage
    URL needs its protocol's filesystem (s3:// s3fs) and a database URL its
    dialect's driver (postgresql:// psycopg2)."""
    res = scan(write(tmp_path, {"run.py": code}))
    assert needs <= res.required, f"missing {sorted(needs - res.required)}"
    assert not (not_needed & (res.required | res.optional | res.on_demand))


def test_an_engine_call_is_classified_like_an_import_there(tmp_path: Path) -> None:
    """A notebook's library import in one cell counts for a call in another; a
    call under an ImportError guard is optional; in a function of a package's
    inner module it is on demand, as a lazy import there would be, also when
    several modules call it (not the late-import rule's dependency)."""
    nb = notebook("import pandas as pd\n", "df = pd.read_hdf('x.h5')\n")
    assert "pytables" in scan(write(tmp_path / "nb", {"a.ipynb": nb})).required
    guarded = PD + "try:\n    print(df.to_markdown())\nexcept ImportError:\n    print(df)\n"
    assert "tabulate" in scan(write(tmp_path / "g", {"run.py": guarded})).optional
    lib = {
        "pkg/__init__.py": "from pkg import core\n",
        "pkg/core.py": "import pandas\n",
        "pkg/export.py": "import pandas\ndef save(df):\n    df.to_excel('x.xlsx')\n",
        "pkg/report.py": "import pandas\ndef write(df):\n    df.to_excel('r.xlsx')\n",
    }
    res = scan(write(tmp_path / "lib", lib))
    assert "openpyxl" in res.on_demand and "openpyxl" not in res.required, (
        "called in functions of two modules: still on demand (an import there would count as the package's own)"
    )


def test_code_that_does_not_parse_still_names_its_imports(tmp_path: Path) -> None:
    """A Python 2 cell or a syntax slip loses the cell, not its packages: its
    whole-line import statements are read (warned about as unparsed)."""
    nb = notebook(
        "import de405\nfrom jplephem import Ephemeris\nprint 'Mars:', 1\n",
        "def f(:\n    import requests, yaml as y  # comment\n",
        'x = """\nimport notamodule now\n"""\nprint(x\n',
    )
    res = scan(write(tmp_path, {"old.ipynb": nb, "ok.py": "import numpy\n"}))
    assert len(res.unparsed) == 3
    assert {"jplephem", "requests", "pyyaml"} <= res.required and "de405" in res.required
    assert "notamodule" not in res.required | res.unresolved, "a prose line is not an import statement"


def test_deep_public_modules_reached_by_no_import_are_installed_on_demand(tmp_path: Path) -> None:
    """A public module deeper than pkg.mod that no import reaches
    (twisted.python.url, authlib.integrations.django_client) is one users import
    themselves: its imports, and those of the private modules only it reaches,
    are installed on demand, never required of the package. Private modules no
    import reaches (developer tools) stay optional."""
    proj = write(
        tmp_path,
        {
            "lib/__init__.py": "from lib import core\n",
            "lib/core.py": "import requests\n",
            "lib/integrations/__init__.py": "",
            "lib/integrations/django_client.py": "import django\nfrom lib.integrations import _glue\n",
            "lib/integrations/_glue.py": "import asgiref\n",
            "lib/_tools/__init__.py": "",
            "lib/_tools/gen.py": "import black\n",
        },
    )
    res = scan(proj)
    assert res.required == {"requests"}, res.required
    assert {"django", "asgiref"} <= res.on_demand, res.on_demand
    assert "black" in res.optional and "black" not in res.on_demand
