#!/usr/bin/env python
"""Train a translation (or autoencoder) model. Same as ``nmt train``; see --help."""

import sys

from nmt.__main__ import program

if __name__ == "__main__":
    sys.exit(program("train"))
