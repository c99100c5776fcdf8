"""Tiny checkpoints for the translate and evaluate tests: trained a few dozen steps on the demo
corpus (about 3 s each), or written untrained when only the model's shape matters."""

from pathlib import Path

from nmt.checkpoint import save_checkpoint, tokenizers_payload
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.corpora import demo_pairs
from nmt.models import build_model
from nmt.training import train
from nmt.vocab import Lang

ROOT = Path(__file__).resolve().parent.parent
TINY_RNN = ModelConfig(emb_size=32, enc_hidden=32, dec_hidden=64, dropout=0.0)


def train_tiny(
    run_dir: Path,
    *,
    corpus: str = "demo",
    src: str = "en",
    trg: str = "fr",
    steps: int = 40,
    model: ModelConfig = TINY_RNN,
) -> Path:
    """The last.pt of a tiny RNN with attention (or ``model``); the test split holds 40 source sentences."""
    train(
        Config(
            data=DataConfig(corpus=corpus, src=src, trg=trg, tokenizer="word", valid_size=20, test_size=40),
            model=model,
            train=TrainConfig(
                max_steps=steps,
                batch_tokens=0,
                batch_size=32,
                lr=1e-2,
                scheduler="none",
                valid_bleu_sentences=20,
                run_dir=str(run_dir),
            ),
        )
    )
    return run_dir / "last.pt"


def save_untrained(path: Path, model: ModelConfig) -> Path:
    """A checkpoint of an untrained model over the demo corpus's English->French vocabulary."""
    pairs = demo_pairs(n=200)
    src_tok = Lang.build([en for en, _ in pairs], name="en")
    trg_tok = Lang.build([fr for _, fr in pairs], name="fr")
    config = Config(data=DataConfig(corpus="demo", tokenizer="word", joint_vocab=False), model=model)
    net = build_model(model, src_tok, trg_tok)
    save_checkpoint(
        path,
        {"config": config.to_dict(), "tokenizers": tokenizers_payload(src_tok, trg_tok), "model": net.state_dict()},
    )
    return path
