#!/usr/bin/env python
"""Translate with a trained checkpoint. Same as ``nmt translate``; see --help."""

import sys

from nmt.commands.translate import main

if __name__ == "__main__":
    sys.exit(main())
