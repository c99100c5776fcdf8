#!/usr/bin/env python
"""Train a translation (or autoencoder) model. Same as the ``nmt-train`` command; see --help."""

import sys

from nmt.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
