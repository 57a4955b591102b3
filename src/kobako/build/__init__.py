"""Dockerfile → image: parse (``dockerfile/``), plan the stages (``planner``), run the steps with the cache
(``executor``: ``run``, ``copy``, ``config``), record the image (``record``). Entry point: ``builder.build``."""
