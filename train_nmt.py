#!/usr/bin/env python
"""Train a translation (or autoencoder) model. Same as ``nmt train``; see --help."""

import sys

from nmt.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
