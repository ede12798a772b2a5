"""A new project: replace this module with your code.

`make PROJECT=<name> pack` scans the imports of every .py and .ipynb file in
this folder and puts the packages they need into the packed environment.
Settings (python version, channels, extra packages, import names that differ
from package names) are in project.yml beside this file.
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    print(f"hello from {__file__} on Python {sys.version.split()[0]}; args: {argv}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
