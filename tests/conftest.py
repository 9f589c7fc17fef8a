"""The suite's fixtures live in the ``tests.support`` package, registered here as a plugin.

``tests/`` is a package, so pytest puts the repository root on ``sys.path`` and every test
module, helper and benchmark is imported by its full name (``tests.support.hook``,
``bench.load``); nothing in the suite edits ``sys.path`` itself.
"""

pytest_plugins = ["tests.support.fixtures"]
