"""Deprecated name of the test support package, kept for tests/test_train_recipe.py.

Import from :mod:`support` instead (``from support import make_h5, ...``); this module
goes once no test module imports it. Not collected (``collect_ignore`` in conftest.py).
"""

from support import (  # noqa: F401
    ELEMENTS,
    MOLECULE_R,
    MOLECULE_Z,
    PairModel,
    crystals,
    label,
    make_h5,
    molecules,
    quiet_run_config,
    teacher,
)
