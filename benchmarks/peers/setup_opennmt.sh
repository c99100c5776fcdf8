#!/usr/bin/env bash
# OpenNMT-py 3.5.1 in a virtual environment of its own (default benchmarks/peers/.venv-opennmt).
# It pins torch < 2.3, so it goes in with --no-deps on the torch we use, and the packages its
# modules import at start-up (its transforms import spacy and fasttext unconditionally) are added.
set -euo pipefail
venv=${1:-"$(cd "$(dirname "$0")" && pwd)/.venv-opennmt"}
if [ -x "$venv/bin/onmt_train" ]; then
  echo "$venv: OpenNMT-py already installed"
  exit 0
fi
python -m venv "$venv"
"$venv/bin/pip" install --quiet torch==2.13.0
"$venv/bin/pip" install --quiet --no-deps OpenNMT-py==3.5.1
"$venv/bin/pip" install --quiet configargparse pyyaml sacrebleu six sentencepiece pyonmttok rapidfuzz \
  pyahocorasick spacy fasttext-wheel
"$venv/bin/onmt_train" --help > /dev/null
echo "$venv: OpenNMT-py 3.5.1 installed"
