"""nmt: a readable PyTorch encoder-decoder toolkit for machine translation and autoencoding.

Data flows one way through the package:

    corpora -> tokenizers -> data (batches) -> models -> learner -> checkpoint -> translator -> search

with the command-line programs in ``nmt.commands`` on top.
"""
__version__ = "0.2.0"

__all__ = ["Translator", "__version__"]


def __getattr__(name: str):
    # Imported on first use, so that reading __version__ (the checkpoint writer does) loads no model code.
    if name == "Translator":
        from nmt.translator import Translator

        return Translator
    raise AttributeError(f"module 'nmt' has no attribute {name!r}")
