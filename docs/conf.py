"""Sphinx configuration of the xsfm documentation.

Build with ``python -m sphinx -b html docs docs/_build/html`` (see ``docs/README``).
"""

from __future__ import annotations

import datetime
import os
import sys

import sphinx_autosummary_accessors

# Document the checkout this file lives in, whether or not xsfm is installed in editable mode.
sys.path.insert(0, os.path.abspath(".."))

import xsfm  # registers the .sfm accessor that the API page documents

project = "xsfm"
author = "xsfm developers"
copyright = f"{datetime.date.today().year}, {author}"
release = xsfm.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_autosummary_accessors",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README", "Thumbs.db", ".DS_Store"]
# The accessor templates (accessor_method.rst, ...) ship with sphinx-autosummary-accessors.
templates_path = ["_templates", sphinx_autosummary_accessors.templates_path]

# -- MyST (markdown pages) ------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

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

# No network at build time: intersphinx is deliberately not enabled, so references to xarray, numpy
# and torch objects render as plain literals instead of links.
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
