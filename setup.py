"""Metadata lives in setup.cfg; this file declares the one optional compiled module.

``taskrpc._jsonscan`` speeds up the worker's count of a request's elements. It is
optional: without a C compiler (or with ``TASKRPC_PURE_PYTHON=1``) the install still
succeeds and the count runs in Python, the same answer at more CPU per refused request.
"""

import os

from setuptools import Extension, setup

extensions = []
if os.environ.get("TASKRPC_PURE_PYTHON", "") in ("", "0"):
    extensions.append(Extension("taskrpc._jsonscan", ["taskrpc/_jsonscan.c"], optional=True))

setup(ext_modules=extensions)
