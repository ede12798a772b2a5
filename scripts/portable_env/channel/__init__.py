"""Build a local conda channel offline, from pinned PyPI wheels and the host CPython.

No conda channel is needed: every wheel named in the wheel list is downloaded
with pip (cached, ``wheels``), converted with whl2conda and packed as a
``.conda`` archive (``convert``, ``archive``); the running interpreter's base
installation becomes the ``python`` package, plus an empty ``python_abi``
(``hostpython``); py-rattler checks the dependencies and writes the repodata
(``index``). The result is a real channel (``file://<abs path>``) for the
tests and ``make demo``. It only works on this host: the python package links
the host's libssl, libffi, sqlite, ...

The channel is rebuilt only when its inputs change (``inputs``: the wheel
list, this package's code, the host python, the tool versions): a rebuilt
package gets a new sha256 unless its bytes are identical, and the archives are
reproducible (sorted members, fixed owners and dates). A new channel is built
beside the old one and swapped in whole (``build``).

Wheel list: ``name==version`` lines, ``#`` comments; ``name==version as
conda-name`` overrides the conda name (default: whl2conda's PyPI->conda rename
table). Output: DIR/noarch/ and DIR/linux-64/ (``.conda`` + repodata.json),
DIR/manifest.json (packages with their import names), DIR/.inputs-sha256.
"""
