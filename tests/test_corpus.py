"""Unit tests of the application-code benchmark (portable_env.scan.corpus,
scripts/score-corpus): the source list, the sdist fetcher and the scoring
rules, on tiny local fixtures (no network)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import pytest
from conftest import write_tree
from portable_env.errors import UserError
from portable_env.scan import corpus
from portable_env.scan.corpus import (
    declared_names,
    extract_sdist,
    glob_re,
    imported_names,
    read_sources,
    renamed_imports,
    score,
    score_repo,
)
from portable_env.scan.output import Result

SDIST = {
    "mylib/__init__.py": "import numpy\n",  # the library's own package: never extracted
    "mylib/core.py": "import scipy\n",
    "pyproject.toml": '[project]\nname = "mylib"\ndependencies = ["numpy>=1"]\n'
    '[project.optional-dependencies]\nplot = ["matplotlib"]\n'
    '[dependency-groups]\ndocs = ["sphinx", {include-group = "plot"}]\n',
    "requirements/docs.txt": "pandas>=2  # the gallery\n-r default.txt\n",
    "examples/plot_a.py": '"""A plot.\n\n    import seaborn  # only text\n"""\nimport mylib\nimport numpy as np\n'
    "import matplotlib.pyplot as plt\nfrom helpers import load\n",
    "examples/helpers.py": "import pandas\n",
    "examples/sub/b.py": "import mylib.core\n",
    "examples/conftest.py": "import pytest\n",
}


def make_sdist(folder: Path, files: dict[str, str], name: str = "mylib-1.0.tar.gz") -> tuple[Path, str]:
    """A .tar.gz (or .zip) sdist with a top folder; (path, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    top = name.removesuffix(".tar.gz").removesuffix(".zip")
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as z:
            for rel, text in files.items():
                z.writestr(f"{top}/{rel}", text)
    else:
        with tarfile.open(path, "w:gz") as t:
            for rel, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(f"{top}/{rel}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def sources_file(tmp_path: Path, sha: str, globs: list[str], extra: str = "") -> Path:
    """A source list of one sdist (mylib==1.0)."""
    lines = [f"pypi:mylib==1.0 {sha} {g}" for g in globs]
    p = tmp_path / "sources.txt"
    p.write_text("# comment\n" + extra + "\n".join(lines) + "\n")
    return p


GLOBS = ["pyproject.toml", "requirements/*.txt", "examples/**/*.py"]


def test_source_lines_of_both_kinds_and_their_errors(tmp_path: Path) -> None:
    sha = "a" * 64
    p = sources_file(tmp_path, sha, ["pyproject.toml", "examples/**/*.py"], "me/repo 0123abc nb/a.ipynb\n")
    src = read_sources(p)
    assert src.github == {"me/repo": [("0123abc", "nb/a.ipynb")]}
    sd = src.sdists["mylib-1.0"]
    assert (sd.name, sd.version, sd.sha256, sd.globs) == ("mylib", "1.0", sha, ["pyproject.toml", "examples/**/*.py"])
    for bad in ["pypi:mylib 1234 x", f"pypi:mylib==1.0 {sha}", "just-a-name COMMIT PATH"]:
        p.write_text(bad + "\n")
        with pytest.raises(UserError, match=r"sources.txt:1: expected"):
            read_sources(p)
    p.write_text(f"pypi:mylib==1.0 {sha} a\npypi:mylib==1.0 {'b' * 64} b\n")
    with pytest.raises(UserError, match="two sha256"):
        read_sources(p)


def test_glob_star_stays_in_a_folder_and_double_star_spans_folders() -> None:
    assert glob_re("examples/*.py").match("examples/a.py")
    assert not glob_re("examples/*.py").match("examples/sub/a.py")
    assert glob_re("examples/**/*.py").match("examples/a.py")
    assert glob_re("examples/**/*.py").match("examples/sub/deep/a.py")
    assert not glob_re("examples/**/*.py").match("examples/a.pyc")
    assert not glob_re("requirements/*.txt").match("docs/requirements/a.txt")


def test_extracts_only_the_matched_files_of_a_checked_sdist(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _path, sha = make_sdist(cache / "pypi", SDIST)
    sd = read_sources(sources_file(tmp_path, sha, GLOBS)).sdists["mylib-1.0"]
    root = extract_sdist(sd, cache, fetch=False)
    assert root == cache / "pypi" / "mylib-1.0"
    got = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert got == sorted(k for k in SDIST if not k.startswith("mylib/"))
    assert json.loads((cache / "pypi" / "mylib-1.0.json").read_text()) == {"sha256": sha, "globs": sorted(GLOBS)}
    (root / "examples" / "plot_a.py").unlink()  # the stamp matches: not extracted again
    assert extract_sdist(sd, cache, fetch=False) == root and not (root / "examples" / "plot_a.py").exists()
    sd.globs.append("docs/*.py")  # other globs: extracted again, and a glob that matches nothing is an error
    with pytest.raises(UserError, match=r"mylib-1.0.tar.gz: no file matches 'docs/\*.py'"):
        extract_sdist(sd, cache, fetch=False)


def test_a_zip_sdist_under_its_own_file_name(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _path, sha = make_sdist(cache / "pypi", {"examples/a.py": "import numpy\n"}, name="MyLib-1.0.zip")
    src = read_sources(sources_file(tmp_path, sha, ["examples/*.py"]))
    root = extract_sdist(src.sdists["mylib-1.0"], cache, fetch=False)
    assert (root / "examples" / "a.py").read_text() == "import numpy\n"


def test_a_missing_or_altered_sdist_fails_with_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    sd = read_sources(sources_file(tmp_path, "c" * 64, ["examples/*.py"])).sdists["mylib-1.0"]
    with pytest.raises(UserError, match=r"not cached; run `scripts/score-corpus --fetch`"):
        extract_sdist(sd, cache, fetch=False)

    def offline(*_a: object, **_k: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(corpus.urllib.request, "urlopen", offline)
    with pytest.raises(UserError, match=r"cannot download mylib==1.0 .*copy its sdist into .*pypi/"):
        extract_sdist(sd, cache, fetch=True)
    make_sdist(cache / "pypi", {"examples/a.py": ""})  # a file of that name, other bytes
    with pytest.raises(UserError, match=r"mylib-1.0.tar.gz: sha256 is not c{64}"):
        extract_sdist(sd, cache, fetch=False)


def test_download_resolves_the_relative_file_url_and_checks_the_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built, sha = make_sdist(tmp_path / "upstream", {"examples/a.py": "import numpy\n"})
    doc = {
        "releases": {
            "1.0": [{"filename": built.name, "url": "../../files/x/mylib-1.0.tar.gz", "digests": {"sha256": sha}}]
        }
    }
    asked = []

    def fake(url: str, timeout: float = 0) -> io.BytesIO:
        asked.append(url)
        return io.BytesIO(json.dumps(doc).encode() if url.endswith("/json") else built.read_bytes())

    monkeypatch.setattr(corpus.urllib.request, "urlopen", fake)
    cache = tmp_path / "cache"
    sd = read_sources(sources_file(tmp_path, sha, ["examples/*.py"])).sdists["mylib-1.0"]
    root = extract_sdist(sd, cache, fetch=True)
    assert asked == ["https://pypi.org/pypi/mylib/json", "https://pypi.org/files/x/mylib-1.0.tar.gz"]
    assert (cache / "pypi" / built.name).read_bytes() == built.read_bytes()
    assert (root / "examples" / "a.py").is_file()
    sd.sha256 = "d" * 64
    with pytest.raises(UserError, match=r"no file of mylib==1.0 has sha256 d{64}"):
        corpus.download(sd, tmp_path / "other")


def test_declared_names_of_pyproject_requirements_and_environment(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "pyproject.toml": SDIST["pyproject.toml"],
            "docs.txt": SDIST["requirements/docs.txt"],
            "environment.yml": "dependencies:\n  - python=3.11\n  - conda-forge::scikit_learn\n  - pip:\n    - torch\n",
        },
    )
    assert declared_names(root / "pyproject.toml") == {"numpy", "matplotlib", "sphinx"}
    assert declared_names(root / "docs.txt") == {"pandas"}
    assert declared_names(root / "environment.yml") == {"scikit-learn", "torch"}


def test_strings_and_comments_are_not_imports() -> None:
    code = (
        '"""Docs.\n\n    import seaborn\n"""\nimport numpy as np, scipy.linalg\nfrom azure.storage import blob\n'
        "s = '''\nfrom pandas import DataFrame\n'''\n# %load_ext rpy2.ipython\n"
        "get_ipython().run_line_magic('load_ext', 'line_profiler')\n"
    )
    assert imported_names(code) == {"numpy", "scipy", "scipy-linalg", "azure", "azure-storage", "line_profiler"}
    nb = {
        "cells": [{"cell_type": "code", "source": ["%load_ext autoreload\n", "%matplotlib widget\n", "import xarray"]}]
    }
    assert imported_names(json.dumps(nb)) == {"autoreload", "ipympl", "xarray"}


def test_an_import_named_by_part_of_a_declared_name_is_that_package() -> None:
    declared = {"ibis-framework", "trx-python", "typing-extensions", "dask", "dask-ml", "arviz-plots"}
    imported = {"ibis", "trx", "typing", "dask", "arviz"}
    # arviz is a package of its own name (the import map says so): not arviz-plots
    assert renamed_imports(declared, imported) == {"ibis": "ibis-framework", "trx": "trx-python"}


def test_score_an_sdist_source(tmp_path: Path) -> None:
    """The distribution itself and the declared names its examples import are
    the truth; test code and the library's own package are not read; the
    examples' helper module is their own code."""
    cache = tmp_path / "cache"
    _path, sha = make_sdist(cache / "pypi", SDIST)
    repos, text = score(sources_file(tmp_path, sha, GLOBS), cache)
    (r,) = repos
    assert r.name == "pypi:mylib-1.0"
    assert r.declared == {"mylib", "numpy", "matplotlib", "sphinx", "pandas"}
    assert r.truth == {"mylib", "numpy", "matplotlib", "pandas"}
    assert "pytest" not in r.imported and "seaborn" not in r.imported and "helpers" not in r.imported
    assert r.missed == set() and r.wrong == set()
    assert text.splitlines()[-1].startswith("RESULT installed_recall=1.000 precision=1.000 sources=1 sdists=1 files=6 ")


def test_score_counts_misses_guarded_and_wrong_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tree(
        tmp_path / "me" / "repo",
        {
            "requirements.txt": "numpy\nibis-framework\nscipy\npandas\n",
            "a.py": "import numpy\nimport ibis\nimport scipy\ntry:\n    import pandas\nexcept ImportError:\n    pass\n",
            "conftest.py": "import requests\n",
        },
    )
    found = Result(  # as if the scan had mapped `ibis` to the PyPI `ibis`, missed scipy, added flask
        required={"numpy", "ibis", "flask"},
        optional={"pandas"},
        evidence={"numpy": {"numpy": []}, "ibis": {"ibis": []}, "flask": {"flask": []}},
    )
    monkeypatch.setattr(corpus, "scan", lambda _root: found)
    r = score_repo("me/repo", root)
    assert r.truth == {"numpy", "ibis-framework", "scipy", "pandas"} and r.renamed == {"ibis": "ibis-framework"}
    assert "requests" not in r.imported, "test code is not scanned by default, nor read"
    assert (r.missed, r.guarded, r.wrong) == ({"ibis-framework", "scipy"}, {"pandas"}, {"ibis", "flask"})


def test_pypi_names_are_their_conda_names_and_subpackages_are_not_distributions(tmp_path: Path) -> None:
    """A declared PyPI name the generated map renames (arch -> arch-py, pyqt5 ->
    pyqt) is the conda package the scan installs for its import; a dotted
    import into a declared distribution (pydicom.data) is that distribution's
    subpackage, not the declared distribution pydicom-data, while a dotted import
    into a namespace (azure.storage.blob) is the distribution of that name."""
    assert corpus.norm("arch") == corpus.norm("arch-py") and corpus.norm("PyQt5") == corpus.norm("pyqt")
    root = write_tree(
        tmp_path / "me" / "repo",
        {
            "requirements.txt": "arch\npydicom\npydicom-data\nazure-storage-blob\n",
            "a.py": "import arch.data\nfrom pydicom.data import get_testdata_file\nfrom azure.storage.blob import B\n",
        },
    )
    r = score_repo("me/repo", root)
    assert r.truth == {corpus.norm("arch"), "pydicom", "azure-storage-blob"}
    assert r.missed == set() and r.wrong == set(), (r.missed, r.wrong)
