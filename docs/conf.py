"""Sphinx configuration of the xsfm documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (see ``docs/README``).

The MyST notebooks (``.md`` pages with ``kernelspec`` front matter) are executed at every build on
the CPU with the shipped models, and a failing cell fails the build.
"""

from __future__ import annotations

import datetime
import os
import sys

import sphinx_autosummary_accessors

# Document the checkout this file lives in, whether or not xsfm is installed in editable mode.
sys.path.insert(0, os.path.abspath(".."))

import xsfm  # registers the .sfm accessor that the API page documents

# The notebook kernels inherit this environment: one torch thread (2-core machines slow down
# erratically with two), no GPU, and no progress bars in the pages. MPLBACKEND is left alone: the
# kernels' inline backend is what puts the figures into the pages.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.pop("MPLBACKEND", None)

project = "xsfm"
author = "xsfm developers"
copyright = f"{datetime.date.today().year}, {author}"
release = xsfm.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",  # MyST markdown and executed MyST notebooks (includes myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_autosummary_accessors",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "README",
    "Thumbs.db",
    ".DS_Store",
    "jupyter_execute",
    ".jupyter_cache",
]
# The accessor templates (accessor_method.rst, ...) ship with sphinx-autosummary-accessors.
templates_path = ["_templates", sphinx_autosummary_accessors.templates_path]

# -- MyST (markdown pages) ------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# -- myst-nb (executed notebooks) -------------------------------------------------------------------
# "force": every notebook page runs at every build, so the numbers and figures on the pages are
# those of the code in this checkout. XSFM_DOCS_EXECUTION=off skips execution (prose-only edits;
# not for -W builds that check the pages), =cache reuses results from .jupyter_cache (outside git).
nb_execution_mode = os.environ.get("XSFM_DOCS_EXECUTION", "force")
nb_execution_cache_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".jupyter_cache")
nb_execution_timeout = 600  # seconds per cell
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True  # ... and the traceback is printed in the build log
nb_execution_in_temp = True  # files a notebook writes go to a temporary folder, not docs/
nb_merge_streams = True
nb_render_image_options = {"width": "100%"}

# -- autodoc / autosummary / numpydoc -------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc renders the types from the docstrings
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
# torch and friends are real dependencies; nothing is mocked so the API pages show real signatures.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- intersphinx ----------------------------------------------------------------------------------
# Links to xarray, numpy, pint, dask and torch need their objects.inv, downloaded at build time.
# Builds must work offline (CI has no network), so intersphinx is on only with
# XSFM_DOCS_INTERSPHINX=1; without it such references render as plain literals.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "xarray": ("https://docs.xarray.dev/en/stable", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "pint": ("https://pint.readthedocs.io/en/stable", None),
    "dask": ("https://docs.dask.org/en/stable", None),
    "distributed": ("https://distributed.dask.org/en/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
}
if os.environ.get("XSFM_DOCS_INTERSPHINX", "0") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_timeout = 30
nitpicky = False

# -- HTML -----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"xsfm {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "auto"}
