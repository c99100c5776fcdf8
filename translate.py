#!/usr/bin/env python
"""Translate with a trained checkpoint. Same as ``nmt translate``; see --help."""

import sys

from nmt.__main__ import program

if __name__ == "__main__":
    sys.exit(program("translate"))
