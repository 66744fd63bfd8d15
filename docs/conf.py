"""Sphinx configuration of fastae's user guide and API reference.

    pip install ".[docs]" && sphinx-build -W -b html docs build/docs

The API reference is generated from the package's numpydoc docstrings (autodoc + napoleon); it
imports the installed fastae. tests/test_docs.py builds it with -W (every warning an error) when
Sphinx is installed.
"""

project = "fastae"
author = "the fastae developers"
copyright = "2026, the fastae developers"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.autosummary"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "api/generated"]
autodoc_default_options = {"undoc-members": False, "inherited-members": False,
                           "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autosummary_generate = False
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
html_theme = "alabaster"
nitpicky = False
