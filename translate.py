#!/usr/bin/env python
"""Translate with a trained checkpoint. Same as ``nmt translate``; see --help."""

from nmt.__main__ import run

if __name__ == "__main__":
    run("translate")
