"""Calls that make a library load another package by name: the engine table.

`pd.read_excel("data.xlsx")` imports openpyxl inside pandas, `xr.open_dataset(
"t.nc")` netCDF4, `fig.write_image("f.png")` kaleido: no import line names
them, yet the call fails on the target without them ("Missing optional
dependency 'openpyxl'"). The table (CALLS) names, per method, the libraries
whose method it is (hosts), the modules loaded by default, by the file's
suffix when the path is a string literal, and by the `engine=` (or
`flavor=` / `parser=`) value when one is given; the documented optional
dependencies of pandas (I/O, plotting, Styler, to_markdown), xarray
(backends, open_mfdataset's dask, the tutorial datasets' pooch), plotly
(static export, FigureWidget) and networkx (drawing, SciPy-backed
algorithms). COMPANIONS: modules whose import loads a package their own
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
) | frozenset(m for mods in COMPANIONS.values() for m in mods)
# A file worth walking for engine calls: one of the names appears in it.
CALL_BYTES_RE = re.compile(rb"\b(?:%s)\b" % b"|".join(re.escape(n.encode()) for n in sorted(CALLS)))


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
    if isinstance(outer, ast.Attribute) and (outer.attr, func.attr) in QUALIFIED:
        return QUALIFIED[(outer.attr, func.attr)], _root(outer)
    eng = CALLS.get(func.attr)
    return (eng, _root(func)) if eng else None


def _root(node: ast.expr) -> str:
    """The first name of `a.b.c` (or `a.b().c`), "" when it starts with anything else."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def modules_of(eng: Engine, call: ast.Call) -> tuple[str, ...]:
    """What one call loads: by its engine= value, else its path's suffix, else the default."""
    for kw in call.keywords:
        if kw.arg in ENGINE_KEYWORDS:
            value = g.const_str(kw.value)
            if value is None:
                return eng.always + eng.default  # engine picked at run time: the default may run
            return eng.always + eng.by_engine.get(value.lower(), ())
    paths = [kw.value for kw in call.keywords if kw.arg in PATH_KEYWORDS] + call.args[:1]
    text = g.const_str(paths[0]) if paths else None
    if text:
        suffix = re.search(r"(\.[A-Za-z0-9]+)/*$", text.lower())
        if suffix and suffix.group(1) in eng.by_suffix:
            return eng.always + eng.by_suffix[suffix.group(1)]
    return eng.always + eng.default


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
