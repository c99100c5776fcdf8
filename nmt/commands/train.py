"""``nmt train`` (train_nmt.py): train a translation (or autoencoder) model.

Every field of the three config dataclasses is a flag (``--batch-tokens``, ``--enc-hidden``,
...); a JSON or TOML file given with ``--config`` may set the same options in ``data``,
``model`` and ``train`` sections, and flags win over it. The run itself is nmt.training's.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from nmt.allocator import keep_freed_memory
from nmt.checkpoint import CheckpointError
from nmt.commands.cli import Exit, UsageError, fail
from nmt.commands.options import build_parser, explicit_options, make_config
from nmt.config import ConfigError
from nmt.learner import TrainingError
from nmt.resume import resume_command
from nmt.text import CorpusError
from nmt.training import Interrupted, train


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Every expected failure is one line on stderr, with its ``Exit`` status."""
    parser = build_parser(__doc__, prog)
    args = parser.parse_args(argv)
    keep_freed_memory()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    try:
        run_dir = train(
            make_config(args), resume=args.resume, overwrite=args.overwrite, explicit=explicit_options(args)
        )
    except Interrupted as e:
        if e.run_dir is not None:
            print(f"{e} Continue with: {resume_command(parser.prog, e.run_dir, e.config)}", file=sys.stderr)
        return Exit.INTERRUPTED
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        print("interrupted: nothing saved since the last checkpoint", file=sys.stderr)
        return Exit.INTERRUPTED
    except (UsageError, ConfigError) as e:
        return fail(e, Exit.USAGE)
    except (CorpusError, CheckpointError, TrainingError, OSError) as e:  # OSError: e.g. a full disk under metrics.jsonl
        return fail(e, Exit.ERROR)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, the leader speaks
        print(f"checkpoints: {run_dir / 'best.pt'} (best validation BLEU), {run_dir / 'last.pt'} (latest)")
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
