"""portable-env: the pipeline's logic, one module per concern.

The executables in scripts/ are thin ``main()`` wrappers over these modules;
the Makefile holds the graph. See README.md ("Layout") for which module owns
which concern.
"""
