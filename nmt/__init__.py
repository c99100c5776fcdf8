"""nmt: a readable PyTorch encoder-decoder toolkit for machine translation and autoencoding.

Data flows one way through the package:

    corpora -> tokenizers -> data (batches) -> models -> learner -> checkpoint -> translator -> search

with the command-line programs in ``nmt.commands`` on top.
"""

from nmt.version import __version__

__all__ = ["Translator", "__version__"]


def __getattr__(name: str):
    # Imported on first use: ``import nmt.specials`` or ``python -m nmt fetch`` need not load torch and the models.
    if name == "Translator":
        from nmt.translator import Translator

        return Translator
    raise AttributeError(f"module 'nmt' has no attribute {name!r}")
