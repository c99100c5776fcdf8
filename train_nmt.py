#!/usr/bin/env python
"""Train a translation (or autoencoder) model. Same as ``nmt train``; see --help."""

from nmt.__main__ import run

if __name__ == "__main__":
    run("train")
