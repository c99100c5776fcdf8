"""The programs of the ``nmt`` command (nmt/__main__.py lists them), and what only they use (options, text files,
one-line errors). Nothing in the library below imports from here."""
