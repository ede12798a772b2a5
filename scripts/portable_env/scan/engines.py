"""Calls that make a library load another package by name: the engine table.

`pd.read_excel("data.xlsx")` imports openpyxl inside pandas, `xr.open_dataset(
"t.nc")` netCDF4, `fig.write_image("f.png")` kaleido: no import line names
them, yet the call fails on the target without them ("Missing optional
dependency 'openpyxl'"). The table (CALLS) names, per method, the libraries
whose method it is (hosts), the modules loaded by default, by the file's
suffix when the path is a string literal, and by the `engine=` (or
`flavor=` / `parser=`) value when one is given; the documented optional
dependencies of pandas (I/O, plotting, to_markdown), xarray
(backends, open_mfdataset's dask, the tutorial datasets' pooch), plotly
(static export, FigureWidget) and networkx (drawing, SciPy-backed
algorithms). A path that is a storage URL needs its protocol's fsspec
filesystem (STORAGE: `s3://` s3fs, `gs://` gcsfs, `abfs://` adlfs), a
database URL given to SQLAlchemy or pandas its dialect's driver
(SQL_DRIVERS: `postgresql://` psycopg2, `mysql+pymysql://` pymysql).
COMPANIONS: modules whose import loads a package their own
package does not require (tqdm.notebook needs ipywidgets).

A call counts when its file (a notebook: any cell) imports one of its hosts
and its receiver is not a module of another library (`pl.read_parquet` with
polars imported as pl is polars', `plt.plot` matplotlib's): the scanner
records a candidate use per module the call loads, `belongs` keeps the
ones of a host the file imports. The use is an import of the module at the call's line, so it
is optional, on demand or required by the same rules as an import there.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from portable_env.scan import guards as g


@dataclass(frozen=True)
class Engine:
    """What one family of calls loads."""

    hosts: tuple[str, ...]  # top-level modules whose call it is
    default: tuple[str, ...] = ()  # loaded when neither the suffix nor engine= says otherwise
    by_suffix: dict[str, tuple[str, ...]] = field(default_factory=dict)  # ".xls" -> ("xlrd",)
    by_engine: dict[str, tuple[str, ...]] = field(default_factory=dict)  # engine="x" -> modules
    always: tuple[str, ...] = ()  # loaded whatever the engine (open_mfdataset: dask)
    sql: int | None = None  # the positional index of a database URL (create_engine: 0, read_sql: 1)


PANDAS = ("pandas", "geopandas", "dask", "modin")
EXCEL = Engine(
    PANDAS,
    ("openpyxl",),
    {".xls": ("xlrd",), ".ods": ("odf",), ".odt": ("odf",), ".xlsb": ("pyxlsb",)},
    {
        "openpyxl": ("openpyxl",),
        "xlrd": ("xlrd",),
        "odf": ("odf",),
        "pyxlsb": ("pyxlsb",),
        "calamine": ("python_calamine",),
        "xlsxwriter": ("xlsxwriter",),
    },
)
PARQUET = Engine(PANDAS, ("pyarrow",), {}, {"pyarrow": ("pyarrow",), "fastparquet": ("fastparquet",)})
ARROW = Engine(PANDAS, ("pyarrow",))
HDF = Engine(PANDAS, ("tables",))
HTML = Engine(PANDAS, ("lxml",), {}, {"lxml": ("lxml",), "bs4": ("bs4", "html5lib"), "html5lib": ("bs4", "html5lib")})
XML = Engine(PANDAS, ("lxml",), {}, {"lxml": ("lxml",), "etree": ()})
CSV = Engine(PANDAS, (), {}, {"pyarrow": ("pyarrow",)})  # read_csv(engine="pyarrow")
PLOT = Engine(PANDAS, ("matplotlib",))
XARRAY = ("xarray",)
XR_ENGINES: dict[str, tuple[str, ...]] = {
    "netcdf4": ("netCDF4",),
    "h5netcdf": ("h5netcdf",),
    "scipy": ("scipy",),
    "zarr": ("zarr",),
    "cfgrib": ("cfgrib",),
    "pydap": ("pydap",),
    "rasterio": ("rioxarray",),
}
XR_SUFFIXES: dict[str, tuple[str, ...]] = {
    ".zarr": ("zarr",),
    ".grib": ("cfgrib",),
    ".grib2": ("cfgrib",),
    ".grb": ("cfgrib",),
    ".grb2": ("cfgrib",),
}
XR_OPEN = Engine(XARRAY, ("netCDF4",), XR_SUFFIXES, XR_ENGINES)
XR_MF = Engine(XARRAY, ("netCDF4",), XR_SUFFIXES, XR_ENGINES, ("dask",))
XR_TUTORIAL = Engine(XARRAY, ("pooch", "netCDF4"))
ZARR = Engine(XARRAY, ("zarr",))
PLOTLY_EXPORT = Engine(("plotly",), ("kaleido",), {}, {"kaleido": ("kaleido",), "orca": ()})
PLOTLY_WIDGET = Engine(("plotly",), ("ipywidgets",))
NX_DRAW = Engine(("networkx",), ("matplotlib",))
NX_SCIPY = Engine(("networkx",), ("scipy",))

# Storage URLs: the fsspec filesystem a protocol needs (`pd.read_csv("s3://b/x.csv")`: s3fs).
STORAGE: dict[str, tuple[str, ...]] = {
    "s3": ("s3fs",),
    "s3a": ("s3fs",),
    "gs": ("gcsfs",),
    "gcs": ("gcsfs",),
    "abfs": ("adlfs",),
    "abfss": ("adlfs",),
    "az": ("adlfs",),
    "adl": ("adlfs",),
    "hf": ("huggingface_hub",),
    "sftp": ("paramiko",),
    "ssh": ("paramiko",),
    "hdfs": ("pyarrow",),
    "oci": ("ocifs",),
    "smb": ("smbprotocol",),
    "webdav": ("webdav4",),
}
# Database URLs: the driver SQLAlchemy loads for a dialect (`create_engine("postgresql://...")`:
# psycopg2), by `dialect+driver`, else by the dialect's default driver.
SQL_DRIVERS: dict[str, tuple[str, ...]] = {
    "postgresql": ("psycopg2",),
    "postgres": ("psycopg2",),
    "postgresql+psycopg2": ("psycopg2",),
    "postgresql+psycopg": ("psycopg",),
    "postgresql+asyncpg": ("asyncpg",),
    "postgresql+pg8000": ("pg8000",),
    "mysql": ("MySQLdb",),
    "mariadb": ("MySQLdb",),
    "mysql+mysqldb": ("MySQLdb",),
    "mysql+pymysql": ("pymysql",),
    "mariadb+pymysql": ("pymysql",),
    "mysql+mysqlconnector": ("mysql.connector",),
    "mysql+aiomysql": ("aiomysql",),
    "mysql+asyncmy": ("asyncmy",),
    "sqlite": (),
    "sqlite+pysqlite": (),
    "sqlite+aiosqlite": ("aiosqlite",),
    "mssql": ("pyodbc",),
    "mssql+pyodbc": ("pyodbc",),
    "mssql+pymssql": ("pymssql",),
    "oracle": ("oracledb",),
    "oracle+oracledb": ("oracledb",),
    "oracle+cx_oracle": ("cx_Oracle",),
    "snowflake": ("snowflake.sqlalchemy",),
    "duckdb": ("duckdb_engine",),
    "bigquery": ("sqlalchemy_bigquery",),
    "redshift+psycopg2": ("sqlalchemy_redshift", "psycopg2"),
    "trino": ("trino",),
    "databricks": ("databricks.sqlalchemy",),
}
URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+._-]*)(?:://|::)")
SQL_ENGINE = Engine(("sqlalchemy",), sql=0)
READ_SQL = Engine(PANDAS, sql=1)
FSSPEC = Engine(("fsspec",))

CALLS: dict[str, Engine] = {
    "read_excel": EXCEL,
    "to_excel": EXCEL,
    "ExcelWriter": EXCEL,
    "ExcelFile": EXCEL,
    "read_parquet": PARQUET,
    "to_parquet": PARQUET,
    "read_feather": ARROW,
    "to_feather": ARROW,
    "read_orc": ARROW,
    "to_orc": ARROW,
    "read_hdf": HDF,
    "to_hdf": HDF,
    "HDFStore": HDF,
    "read_html": HTML,
    "read_xml": XML,
    "to_xml": XML,
    "read_csv": CSV,
    "read_json": CSV,
    "read_table": CSV,
    "read_fwf": CSV,
    "read_pickle": CSV,
    "to_csv": CSV,
    "to_json": CSV,
    "to_pickle": CSV,
    "read_sql": READ_SQL,
    "read_sql_query": READ_SQL,
    "read_sql_table": READ_SQL,
    "to_sql": READ_SQL,
    "create_engine": SQL_ENGINE,
    "create_async_engine": SQL_ENGINE,
    "open_files": FSSPEC,
    "get_mapper": FSSPEC,
    "url_to_fs": FSSPEC,
    "filesystem": FSSPEC,
    "to_markdown": Engine(PANDAS, ("tabulate",)),
    "read_spss": Engine(PANDAS, ("pyreadstat",)),
    "plot": PLOT,  # df.plot(), df.plot.scatter(): pandas' default backend
    "hist": PLOT,
    "boxplot": PLOT,
    "scatter_matrix": PLOT,
    "open_dataset": XR_OPEN,
    "open_dataarray": XR_OPEN,
    "load_dataset": XR_OPEN,
    "load_dataarray": XR_OPEN,
    "to_netcdf": XR_OPEN,
    "open_mfdataset": XR_MF,
    "open_zarr": ZARR,
    "to_zarr": ZARR,
    "write_image": PLOTLY_EXPORT,
    "to_image": PLOTLY_EXPORT,
    "FigureWidget": PLOTLY_WIDGET,
    "draw": NX_DRAW,
    "draw_networkx": NX_DRAW,
    "draw_networkx_nodes": NX_DRAW,
    "draw_networkx_edges": NX_DRAW,
    "draw_networkx_labels": NX_DRAW,
    "draw_networkx_edge_labels": NX_DRAW,
    "draw_circular": NX_DRAW,
    "draw_kamada_kawai": NX_DRAW,
    "draw_random": NX_DRAW,
    "draw_spectral": NX_DRAW,
    "draw_spring": NX_DRAW,
    "draw_shell": NX_DRAW,
    "draw_planar": NX_DRAW,
    "pagerank": NX_SCIPY,
    "kamada_kawai_layout": NX_SCIPY,
    "spectral_layout": NX_SCIPY,
    "adjacency_matrix": NX_SCIPY,
    "laplacian_matrix": NX_SCIPY,
    "to_scipy_sparse_array": NX_SCIPY,
}
# Methods of a receiver named so: `xr.tutorial.open_dataset("air_temperature")`, `df.plot.scatter()`.
QUALIFIED: dict[tuple[str, str], Engine] = {
    ("tutorial", "open_dataset"): XR_TUTORIAL,
    ("tutorial", "load_dataset"): XR_TUTORIAL,
    ("tutorial", "open_dataarray"): XR_TUTORIAL,
    ("fsspec", "open"): FSSPEC,  # not the builtin open()
}
ENGINE_KEYWORDS = ("engine", "flavor", "parser")
PATH_KEYWORDS = ("io", "path", "path_or_buf", "filename_or_obj", "excel_writer", "store", "paths", "file")
# Modules whose import loads another package, not a dependency of their own (import name -> modules).
COMPANIONS: dict[str, tuple[str, ...]] = {"tqdm.notebook": ("ipywidgets",), "tqdm.tqdm_notebook": ("ipywidgets",)}
# Every module a call or import of the table can load (the benchmark reports these apart).
LOADED = frozenset(
    m
    for eng in [*CALLS.values(), *QUALIFIED.values()]
    for group in (eng.default, eng.always, *eng.by_suffix.values(), *eng.by_engine.values())
    for m in group
) | frozenset(m for table in (COMPANIONS, STORAGE, SQL_DRIVERS) for mods in table.values() for m in mods)
# The names of the table's calls, and a pattern of their first words (read_, to_, plot): a
# few alternatives, fast to search; a match is a call's name when the whole word is in NAMES.
NAMES = frozenset({*CALLS, *(m for _, m in QUALIFIED)})
FIRST_WORDS = sorted({n.partition("_")[0] + ("_" if "_" in n else "") for n in NAMES})
CALL_BYTES_RE = re.compile(rb"\b(?:%s)\w*" % b"|".join(re.escape(w.encode()) for w in FIRST_WORDS))


def call_lines(data: bytes) -> list[int]:
    """The (sorted, 1-based) numbers of the lines that name a call of the table."""
    out: list[int] = []
    line, pos = 1, 0
    for m in CALL_BYTES_RE.finditer(data):
        if m.group().decode() not in NAMES:
            continue
        line += data.count(b"\n", pos, m.start())
        pos = m.start()
        if not out or out[-1] != line:
            out.append(line)
    return out


def engine_of(call: ast.Call) -> tuple[Engine, str] | None:
    """The table's row for a call and its receiver's first name, if any."""
    func = call.func
    if isinstance(func, ast.Name):
        eng = CALLS.get(func.id)
        return (eng, func.id) if eng else None
    if not isinstance(func, ast.Attribute):
        return None
    outer = func.value
    if isinstance(outer, ast.Attribute) and outer.attr == "plot":
        return PLOT, _root(outer)  # df.plot.scatter(...)
    named = outer.attr if isinstance(outer, ast.Attribute) else outer.id if isinstance(outer, ast.Name) else ""
    if (named, func.attr) in QUALIFIED:
        return QUALIFIED[(named, func.attr)], _root(outer)
    eng = CALLS.get(func.attr)
    return (eng, _root(func)) if eng else None


def _root(node: ast.expr) -> str:
    """The first name of `a.b.c` (or `a.b().c`), "" when it starts with anything else."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def modules_of(eng: Engine, call: ast.Call) -> tuple[str, ...]:
    """What one call loads: by its engine= value, else its path's suffix, else
    the default; and what its URL needs (a storage protocol's filesystem, a
    database dialect's driver)."""
    if eng.sql is not None:
        con = [kw.value for kw in call.keywords if kw.arg in ("url", "con")] + call.args[eng.sql : eng.sql + 1]
        return database_modules(_text(con[0]) if con else None, eng.hosts == PANDAS)
    paths = [kw.value for kw in call.keywords if kw.arg in PATH_KEYWORDS] + call.args[:1]
    text = _text(paths[0]) if paths else None
    return _by_engine_or_suffix(eng, call, text) + storage_modules(text)


def _by_engine_or_suffix(eng: Engine, call: ast.Call, text: str | None) -> tuple[str, ...]:
    for kw in call.keywords:
        if kw.arg in ENGINE_KEYWORDS:
            value = g.const_str(kw.value)
            if value is None:
                return eng.always + eng.default  # engine picked at run time: the default may run
            return eng.always + eng.by_engine.get(value.lower(), ())
    if text:
        suffix = re.search(r"(\.[A-Za-z0-9]+)/*$", text.lower())
        if suffix and suffix.group(1) in eng.by_suffix:
            return eng.always + eng.by_suffix[suffix.group(1)]
    return eng.always + eng.default


def _text(node: ast.expr) -> str | None:
    """A string literal's value, or the constant start of an f-string (`f"s3://{bucket}/x"`)."""
    if isinstance(node, ast.JoinedStr) and node.values:
        return g.const_str(node.values[0])
    return g.const_str(node)


def storage_modules(text: str | None) -> tuple[str, ...]:
    """The filesystems a storage URL's protocols need (`s3://b/k`,
    `simplecache::gs://b/k`; a bare protocol name too: fsspec.filesystem("s3"))."""
    out: tuple[str, ...] = ()
    rest = text or ""
    if rest in STORAGE:
        return STORAGE[rest]
    while m := URL_RE.match(rest):
        out += STORAGE.get(m.group(1).lower(), ())
        rest = rest[m.end() :]
    return out


def database_modules(url: str | None, via_pandas: bool) -> tuple[str, ...]:
    """The driver a database URL's dialect needs (SQLAlchemy's default driver
    when none is named); pandas needs SQLAlchemy itself for a URL."""
    m = URL_RE.match(url or "")
    if not m:
        return ()
    name = m.group(1).lower()
    drivers = SQL_DRIVERS.get(name, SQL_DRIVERS.get(name.split("+")[0], ()))
    return (("sqlalchemy",) if via_pandas else ()) + drivers


def belongs(hosts: tuple[str, ...], receiver: str, aliases: dict[str, str], imported: set[str]) -> bool:
    """Whether a call of the table is a host's: its receiver is a host module
    (`pd.read_excel`, `read_excel` imported from pandas), or no module at all
    (`df.to_excel`) in a file that imports a host. `aliases`: local name ->
    the module (or module.name) it was imported as; `imported`: the file's
    imported top-level modules."""
    bound = aliases.get(receiver)
    if bound is not None:
        return bound.split(".")[0] in hosts
    return not imported.isdisjoint(hosts)


def companions(name: str) -> tuple[str, ...]:
    """Modules an import of `name` loads besides its own package (tqdm.notebook: ipywidgets)."""
    for key, mods in COMPANIONS.items():
        if name == key or name.startswith(key + "."):
            return mods
    return ()
