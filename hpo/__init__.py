"""The chapter's code, one job per module (see each module's docstring)."""
