#!/usr/bin/env bash
# Teacher, distillation, student: English to French on a 2-core CPU, about 1 h 35 min in all
# (docs/experiments.rst#distilled-students has each step's minutes and each model's BLEU and speed).
# After a stop, run the remaining steps by hand: nmt distill resumes with the same command, and a
# stopped training prints its --resume command.
set -euo pipefail
nmt train --config recipes/transformer-cpu-1h.toml
nmt distill --teacher checkpoints/transformer-cpu-1h/best.pt --run-dir corpora/distilled-en-fr
nmt train --config recipes/transformer-student-cpu.toml
nmt evaluate --checkpoint checkpoints/transformer-student-cpu/best.pt \
  --test-files corpora/distilled-en-fr/test.en corpora/distilled-en-fr/test.fr
