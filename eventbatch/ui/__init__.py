"""The web console: read-only HTML pages over the read models.

Where it sits: beside the CLI's read side. ``eventbatch.ui.app`` serves the
pages (aiohttp) from the same read-model store and renderers as
``eventbatch queue list``, ``job list``, ``job view``, ``audit job`` and
``why``; ``eventbatch serve --ui-port`` and ``eventbatch ui --log URL`` start
it. It never appends to the log.
"""
