"""The programs: train, translate, evaluate and fetch, and what only they use (options, text files,
one-line errors). Nothing in the library below imports from here."""
