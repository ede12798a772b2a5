"""The PyPI top-level snapshot (portable_env.toplevels) and its use in the
generated import map: wheels read remotely through real HTTP range requests
from a local server, the import names a wheel's paths give, and how a gap in
the table is filled."""

from __future__ import annotations

import datetime
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from portable_env import importmap, toplevels
from portable_env.errors import UserError


@pytest.mark.parametrize(
    ("paths", "names"),
    [
        (["six.py", "six-1.17.dist-info/RECORD"], ["six"]),
        (["yaml/__init__.py", "yaml/cyaml.py", "_yaml/__init__.py"], ["_yaml", "yaml"]),
        (["_cffi_backend.cpython-311-x86_64-linux-gnu.so"], ["_cffi_backend"]),
        (["google/cloud/storage/__init__.py", "google/cloud/storage/blob.py"], ["google.cloud.storage"]),
        (["azure/__init__.py", "azure/mgmt/__init__.py", "azure/mgmt/resource/__init__.py"], ["azure.mgmt.resource"]),
        (["backports/__init__.py", "backports/tarfile/__init__.py"], ["backports.tarfile"]),  # pkgutil namespace
        (["keras/__init__.py:9000", "keras/api/__init__.py", "keras/src/__init__.py"], ["keras"]),  # real code
        (["torch/__init__.py", "torch/nn/__init__.py", "torch/functional.py"], ["torch"]),
        (["mpl_toolkits/axes_grid1/__init__.py", "mpl_toolkits/axes_grid1/a.py"], ["mpl_toolkits.axes_grid1"]),
        (["a/b/c/d/__init__.py"], ["a.b.c.d"]),  # the whole path down to the package
        (  # a module in a namespace folder, beside a package in it
            ["opentelemetry/instrumentation/instrumentor.py", "opentelemetry/instrumentation/_labeler/__init__.py"],
            ["opentelemetry.instrumentation", "opentelemetry.instrumentation._labeler"],
        ),
        (["x-1.data/scripts/run.py", "x-1.dist-info/METADATA", "README.md", "x/"], []),
        (["my-tool/__init__.py", "__editable__/a.py", "pkg/data.json"], []),
        (["doc/_static/draw.py", "services/adm/src/a.py", "win32/win32api.pyd"], []),  # no package on the way
        (["tests/__init__.py", "test_win32api.py", "pennylane/__init__.py"], ["pennylane"]),
    ],
)
def test_import_names_of_a_wheels_paths(paths: list[str], names: list[str]) -> None:
    entries = [(p.split(":")[0], int(p.split(":")[1]) if ":" in p else 60) for p in paths]
    assert toplevels.import_names(entries) == names


class Served:
    """A local HTTP server of files that answers range requests, counting bytes sent."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.sent = 0
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = served.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                if rng:
                    start_s, end_s = rng.removeprefix("bytes=").split("-")
                    start, end = int(start_s), min(int(end_s), len(body) - 1)
                    body = body[start : end + 1]
                    self.send_response(206)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                served.sent += len(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served()
    yield s
    s.httpd.shutdown()


def wheel(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_wheel_is_listed_from_its_end_without_fetching_it(served: Served) -> None:
    big = wheel({"upath/__init__.py": b"x" * 500_000, "upath/core.py": b"", "u-1.dist-info/RECORD": b""})
    served.files["/big.whl"] = big
    with zipfile.ZipFile(toplevels.RemoteFile(served.url + "/big.whl", len(big))) as zf:
        assert toplevels.import_names((i.filename, i.file_size) for i in zf.infolist()) == ["upath"]
    assert served.sent <= toplevels.TAIL < len(big)
    # a central directory longer than the first read is fetched by further ranges
    many = wheel({f"pkg/m{i:05d}.py": b"" for i in range(2_000)} | {"pkg/__init__.py": b""})
    served.files["/many.whl"] = many
    with zipfile.ZipFile(toplevels.RemoteFile(served.url + "/many.whl", len(many))) as zf:
        assert len(zf.namelist()) == 2_001


def test_a_project_is_read_from_its_latest_wheel(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyPI's JSON, a relative file URL (as mirrors serve them), the pure-Python
    wheel chosen over a Linux one and an sdist; no wheel: None."""
    pure = wheel({"docket/__init__.py": b""})
    linux = wheel({"docket_native/__init__.py": b""})
    served.files["/files/pydocket-1-py3-none-any.whl"] = pure
    served.files["/files/pydocket-1-cp311-manylinux_2_17_x86_64.whl"] = linux
    urls = [
        {"packagetype": "sdist", "url": "../../files/pydocket-1.tar.gz", "size": 1, "filename": "pydocket-1.tar.gz"},
        {
            "packagetype": "bdist_wheel",
            "url": "../../files/pydocket-1-cp311-manylinux_2_17_x86_64.whl",
            "size": len(linux),
            "filename": "pydocket-1-cp311-manylinux_2_17_x86_64.whl",
        },
        {
            "packagetype": "bdist_wheel",
            "url": "../../files/pydocket-1-py3-none-any.whl",
            "size": len(pure),
            "filename": "pydocket-1-py3-none-any.whl",
        },
    ]
    served.files["/pypi/pydocket/json"] = json.dumps({"urls": urls}).encode()
    served.files["/pypi/only-sdist/json"] = json.dumps({"urls": urls[:1]}).encode()
    monkeypatch.setattr(toplevels, "PYPI_JSON", served.url + "/pypi/{name}/json")
    assert toplevels.project_imports("pydocket") == ["docket"]
    assert toplevels.project_imports("only-sdist") is None
    assert toplevels.project_imports("not-on-pypi") is None


def test_a_project_s_commands_are_its_wheel_s_entry_points(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """console_scripts and gui_scripts of the wheel's entry_points.txt, case kept,
    and the files of its .data/scripts/; other groups and odd names: none."""
    eps = (
        b"[console_scripts]\nKaggle = kaggle.cli:main\nkaggle-cli=kaggle.cli:main\n[gui_scripts]\nkviewer = k:gui\n"
        b"[pytest11]\nplug = k.plugin\n[console_scripts.bad]\n"
    )
    w = wheel(
        {
            "kaggle/__init__.py": b"",
            "kaggle-1.dist-info/entry_points.txt": eps,
            "kaggle-1.data/scripts/kaggle-sh": b"#!/bin/sh\n",  # a script the wheel installs as it is
            "kaggle-1.data/data/share/x": b"",
        }
    )
    served.files["/files/kaggle-1-py3-none-any.whl"] = w
    served.files["/files/plain-1-py3-none-any.whl"] = plain = wheel({"plain/__init__.py": b""})
    for name, data in (("kaggle", w), ("plain", plain)):
        f = f"{name}-1-py3-none-any.whl"
        doc = {"urls": [{"packagetype": "bdist_wheel", "url": f"../../files/{f}", "size": len(data), "filename": f}]}
        served.files[f"/pypi/{name}/json"] = json.dumps(doc).encode()
    monkeypatch.setattr(toplevels, "PYPI_JSON", served.url + "/pypi/{name}/json")
    assert toplevels.project_commands("kaggle") == ["Kaggle", "kaggle-cli", "kaggle-sh", "kviewer"]
    assert toplevels.project_commands("plain") == []
    assert toplevels.project_commands("not-on-pypi") is None


def test_a_program_is_the_most_downloaded_project_s_but_the_system_s_and_the_installer_s() -> None:
    rows = [
        ("pip", ["pip", "pip3"]),
        ("tb-nightly", ["tensorboard"]),  # more downloaded, but tensorboard is named like the program
        ("tensorflow", ["saved_model_cli", "tensorboard"]),
        ("tensorboard", ["tensorboard"]),
        ("torch", ["torchrun", "tree"]),  # no Python package is needed to run `tree` or `make`
        ("cmake", ["cmake", "ctest"]),
        ("tf-nightly", ["saved_model_cli"]),  # less downloaded: the first project keeps the program
        ("pipx-helper", ["pip3.11", "python3"]),
        ("some-lint", ["main", "build"]),  # generic words are junk, as such import names are
    ]
    assert importmap.command_packages(rows, {"torch": "pytorch"}) == {
        "tensorboard": "tensorboard",
        "saved_model_cli": "tensorflow",
        "torchrun": "pytorch",
        "ctest": "cmake",
    }


def test_a_gap_in_the_table_is_filled_by_the_import_s_own_project_else_the_most_downloaded() -> None:
    rows = [
        ("prefect", ["prefect"]),
        ("universal-pathlib", ["upath"]),
        ("python-crontab", ["crontab", "cronlog"]),
        ("crontab", ["crontab"]),
        ("sloppy", ["upath", "numpy"]),
        ("grpcio-health-checking", ["grpc_health"]),
        ("cupy-cuda12x", ["cupy", "cupyx"]),
    ]
    rows += [
        ("django-addon", ["django.contrib.addon"]),
        ("google-cloud-newapi", ["google.cloud.newapi"]),
        ("azure-core-tracing-x", ["azure.core.tracing.ext.x"]),
        ("langgraph-checkpoint", ["langgraph.checkpoint"]),
        ("langgraph", ["langgraph.graph", "langgraph.pregel"]),
        ("stubs-full", [f"stubs_{i}" for i in range(importmap.MAX_PROJECT_NAMES + 1)]),
        ("apache-airflow-providers-ftp", ["airflow.providers.ftp"]),
    ]
    cands: importmap.Candidates = {
        "numpy": {"numpy"},
        "django": {"django"},
        "google.cloud.storage": {"google-cloud-storage"},
        "azure.core": {"azure-core"},
        "airflow": {"airflow"},
    }
    assert importmap.add_top_levels(cands, rows, {"grpcio-health-checking": "grpcio-health-checking"}) == 13
    assert cands["upath"] == {"universal-pathlib"}, "the most downloaded project that ships it"
    assert cands["crontab"] == {"crontab"}, "a project of the import's very name wins"
    assert cands["numpy"] == {"numpy"}, "what the other sources know is kept"
    assert cands["grpc_health"] == {"grpcio-health-checking"}
    assert cands["cupy"] == cands["cupyx"] == {"cupy"}, "a PyPI-only build is its package"
    assert cands["google.cloud.newapi"] == {"google-cloud-newapi"}, "a new client in a known namespace"
    assert "django.contrib.addon" not in cands, "a known package does not become a namespace"
    assert "stubs_0" not in cands, "a project that sprays its modules names nothing"
    assert "azure.core.tracing.ext.x" not in cands, "nor does a known package below a namespace"
    assert cands["airflow.providers.ftp"] == {"apache-airflow-providers-ftp"}, (
        "below a known package, a project named after the path is a namespace distribution"
    )
    assert cands["langgraph"] == {"langgraph"}, "a namespace folder named after its project holds its modules"
    assert cands["langgraph.checkpoint"] == {"langgraph-checkpoint"}


def test_a_known_package_that_namespace_distributions_extend_keeps_its_row() -> None:
    """fluent is fluent-logger's package; fluent-syntax ships fluent.syntax
    beside it. `import fluent.sender` stays fluent-logger, `fluent.syntax`
    is fluent-syntax; a namespace no source knows as a package maps to nothing,
    nor does one that several projects ship (databricks: databricks-sdk's,
    databricks-connect's, koalas' ...)."""
    cands: importmap.Candidates = {"fluent": {"fluent-logger"}, "databricks": {"koalas"}}
    rows = [
        ("fluent-syntax", ["fluent.syntax"]),
        ("acme-widgets", ["acme.widgets"]),
        ("databricks-sdk", ["databricks"]),
        ("koalas", ["databricks"]),
        ("databricks-labs-lsql", ["databricks.labs.lsql"]),
    ]
    known = set(cands) - importmap.find_namespaces(dict(cands)) - importmap.shared_names(rows)
    importmap.add_top_levels(cands, rows, {})
    imports, _ = importmap.choose(cands, importmap.find_namespaces(cands), keep=known)
    assert imports["fluent"] == "fluent-logger" and imports["fluent.syntax"] == "fluent-syntax"
    assert "databricks" not in imports and imports["databricks.labs.lsql"] == "databricks-labs-lsql"
    assert "acme" not in imports and imports["acme.widgets"] == "acme-widgets"
    assert "fluent" not in importmap.choose(cands, importmap.find_namespaces(cands))[0], "the rule under test"


def test_a_much_downloaded_project_beats_an_obscure_one_of_the_very_name() -> None:
    """`import slugify`: depfinder knows slugify (an abandoned package of that
    very name) and python-slugify; only python-slugify is among the most
    downloaded projects that ship `slugify`: it is chosen, and both are listed
    as ambiguous. A name whose own package is popular keeps it (numpy), and
    so does one the snapshot does not ship (no evidence either way). Without
    a candidate of the very name the most downloaded wins (Crypto:
    pycryptodome, not the shorter, dead pycrypto)."""
    cands: importmap.Candidates = {
        "slugify": {"slugify", "python-slugify"},
        "numpy": {"numpy", "numpy-base"},
        "rare": {"rare", "py-rare"},
        "Crypto": {"pycrypto", "pycryptodome"},
    }
    popular = {"slugify": ["python-slugify"], "numpy": ["numpy", "numpy-base"], "Crypto": ["pycryptodome"]}
    imports, ambiguous = importmap.choose(cands, set(), popular=popular)
    # no candidate of the very name: the most downloaded, before the shortest
    assert imports["Crypto"] == "pycryptodome" and importmap.choose(cands, set())[0]["Crypto"] == "pycrypto"
    assert imports["slugify"] == "python-slugify" and ambiguous["slugify"] == ["python-slugify", "slugify"]
    assert imports["numpy"] == "numpy" and "numpy" not in ambiguous
    assert imports["rare"] == "rare"
    assert importmap.choose(cands, set())[0]["slugify"] == "slugify", "the rule under test"


def test_the_snapshot_file_is_read_strictly(tmp_path: Path) -> None:
    f = tmp_path / "top.txt"
    f.write_text("# header\nuniversal-pathlib upath\n\ngoogle-cloud-storage google.cloud.storage  # ns\n")
    assert toplevels.read(f) == [("universal-pathlib", ["upath"]), ("google-cloud-storage", ["google.cloud.storage"])]
    f.write_text("universal-pathlib\n")
    with pytest.raises(UserError, match=r"top.txt:1: 'universal-pathlib' names no import; the form is"):
        toplevels.read(f)
    with pytest.raises(UserError, match="fetch it with scripts/fetch-top-levels"):
        toplevels.read(tmp_path / "missing.txt")
    text = toplevels.render([("Universal_Pathlib", ["upath"]), ("no-wheel", [])], ["h1"])
    assert text == "# h1\nuniversal-pathlib upath\n"


def test_a_snapshot_is_not_written_when_pypi_cannot_be_read(
    served: Served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Projects without a wheel are left out; projects that cannot be read
    (here: a JSON that is not JSON) make it an error, and no file is written."""
    served.files["/pypi/sdist-only/json"] = json.dumps({"urls": []}).encode()
    served.files["/pypi/broken/json"] = b"<html>"
    monkeypatch.setattr(toplevels, "PYPI_JSON", served.url + "/pypi/{name}/json")
    monkeypatch.setattr(toplevels, "ATTEMPTS", 1)
    assert toplevels.fetch_all(["sdist-only"], 2) == []
    names = tmp_path / "names.txt"
    names.write_text("sdist-only\nbroken\n")
    out = tmp_path / "top.txt"
    assert toplevels.main([str(names), "--source", "test", "-o", str(out)]) == 1
    assert not out.exists()
    names.write_text("sdist-only\n$(touch x)\n")
    assert toplevels.main([str(names), "--source", "test", "-o", str(out)]) == 1
    assert not out.exists() and not (tmp_path / "x").exists()


def test_an_installed_distribution_names_its_importable_top_levels(tmp_path: Path) -> None:
    """The one reader of an installed dist-info (the import map's tools venv,
    install-pypi's record): top_level.txt where there is one, else RECORD;
    never a name no import can spell (yaml-stubs, a hash-named module)."""
    import importlib.metadata as md

    listed = tmp_path / "listed-1.0.dist-info"
    listed.mkdir()
    (listed / "top_level.txt").write_text("listed\nlisted-stubs\n6ec57f__mypyc\n_listed\n")
    bare = tmp_path / "bare-1.0.dist-info"
    bare.mkdir()
    (bare / "RECORD").write_text(
        "bare/__init__.py,,\nbare/x.py,,\nsolo.py,,\n_speed.cpython-311-x86_64-linux-gnu.so,,\n"
        "bare-stubs/__init__.pyi,,\n../../bin/bare,,\nbare-1.0.dist-info/METADATA,,\n__pycache__/solo.pyc,,\n"
    )
    assert toplevels.installed_names(md.Distribution.at(listed)) == {"listed", "_listed"}
    assert toplevels.installed_names(md.Distribution.at(bare)) == {"bare", "solo", "_speed"}


def test_only_some_projects_of_a_snapshot_are_read_again(
    served: Served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--only: the projects named that the snapshot lists are read again, in
    its rank order; its other rows and its header stay, with a line that says
    what was read again; a name the snapshot does not list is not added."""
    ns = wheel({"otel/instr/instrumentor.py": b"", "otel/instr/_labeler/__init__.py": b""})
    served.files["/files/otel-instr-1-py3-none-any.whl"] = ns
    url = {"packagetype": "bdist_wheel", "url": "../../files/otel-instr-1-py3-none-any.whl", "size": len(ns),
           "filename": "otel-instr-1-py3-none-any.whl"}
    served.files["/pypi/otel-instr/json"] = json.dumps({"urls": [url]}).encode()
    monkeypatch.setattr(toplevels, "PYPI_JSON", served.url + "/pypi/{name}/json")
    out = tmp_path / "top.txt"
    out.write_text("# GENERATED\n# Fetched then\nsix six\notel-instr otel.instr._labeler\nupath-x upath\n")
    names = tmp_path / "names.txt"
    names.write_text("otel-instr\nnot-listed\n")
    assert toplevels.main([str(names), "--only", "the namespace projects", "-o", str(out)]) == 0
    assert out.read_text() == (
        "# GENERATED\n# Fetched then\n# Read again " + datetime.date.today().isoformat()
        + ": 1 projects, the namespace projects.\n"
        "six six\notel-instr otel.instr otel.instr._labeler\nupath-x upath\n"
    )
