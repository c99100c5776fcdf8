"""The Transformer through the same learner, checkpoints and search as the RNN."""

import dataclasses

import pytest
import torch
from tiny_checkpoints import save_untrained

from nmt import search
from nmt.checkpoint import load_checkpoint, load_model, save_checkpoint
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.corpora import load_corpus
from nmt.data import make_batch
from nmt.training import train
from nmt.translator import Translator


@pytest.fixture(scope="module")
def transformer_copy_run(short_sentences, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("transformer-copy")
    train(
        Config(
            data=DataConfig(
                corpus=str(short_sentences), src="en", trg="en", tokenizer="word", valid_size=25, test_size=0
            ),
            model=ModelConfig(
                arch="transformer", d_model=64, heads=4, ff_size=128, enc_layers=2, dec_layers=2, dropout=0.0
            ),
            train=TrainConfig(
                lr=3e-3,
                scheduler="inverse_sqrt",
                warmup=50,
                batch_tokens=0,
                batch_size=32,
                epochs=25,
                patience=0,
                valid_bleu_sentences=25,
                run_dir=str(run_dir),
            ),
        )
    )
    return run_dir


def test_a_tiny_transformer_learns_to_copy_500_real_sentences(transformer_copy_run):
    translator = Translator.from_checkpoint(transformer_copy_run / "last.pt")
    sentences = [src for src, _ in load_corpus(translator.config.data).train]
    copies = translator.translate(sentences, batch_size=100)
    exact = sum(c == s for c, s in zip(copies, sentences)) / len(sentences)
    print(f"transformer copy task exact match: {exact:.1%} of {len(sentences)}")
    assert exact >= 0.95


def test_the_transformer_checkpoint_round_trips_exactly(transformer_copy_run):
    ckpt = load_checkpoint(transformer_copy_run / "last.pt")
    model, _, _, config = load_model(transformer_copy_run / "last.pt")
    assert config.model.arch == "transformer"
    state = model.state_dict()
    assert state.keys() == ckpt["model"].keys()
    assert all(torch.equal(state[k], ckpt["model"][k]) for k in state)


def test_on_the_trained_transformer_beam_one_is_greedy_and_beam_five_scores_at_least_as_well(transformer_copy_run):
    model, tok, _, config = load_model(transformer_copy_run / "last.pt")
    sources = [src for src, _ in load_corpus(config.data).valid]
    batch = make_batch([(tok.encode(s), []) for s in sources])
    limit = search.max_output_length(batch.src_len)
    greedy = search.greedy(model, batch.src, batch.src_len, max_len=limit)
    one = search.beam_search(model, batch.src, batch.src_len, beam_size=1, max_len=limit)
    five = search.beam_search(model, batch.src, batch.src_len, beam_size=5, max_len=limit)
    assert one.tokens == greedy.tokens
    assert all(b[0] >= g[0] - 1e-4 for b, g in zip(five.log_probs, greedy.log_probs))


def test_cached_decoding_inside_beam_search_gives_the_full_forward_logits(transformer_copy_run):
    """Rescoring each beam hypothesis with one teacher-forced forward pass gives the log-prob
    that the cached, reordered step-by-step search computed for it."""
    model, tok, _, config = load_model(transformer_copy_run / "last.pt")
    sources = [src for src, _ in load_corpus(config.data).valid][:8]
    batch = make_batch([(tok.encode(s), []) for s in sources])
    limit = search.max_output_length(batch.src_len)
    hyps = search.beam_search(model, batch.src, batch.src_len, beam_size=4, n_best=4, max_len=limit)
    for row, (n_best, log_probs) in enumerate(zip(hyps.tokens, hyps.log_probs)):
        src, src_len = batch.src[row : row + 1, : batch.src_len[row]], batch.src_len[row : row + 1]
        ended = [
            (t, lp) for t, lp in zip(n_best, log_probs) if len(t) < limit[row]
        ]  # those cut at the limit have no EOS
        assert ended
        for tokens, log_prob in ended:
            full = make_batch([([0], tokens)])
            with torch.no_grad():
                scores = model(src, src_len, full.trg_in).log_softmax(-1)[0]  # (len + 1, vocab)
            assert scores.gather(1, full.trg_out[0][:, None]).sum().item() == pytest.approx(log_prob, abs=1e-4)


def test_a_transformer_saved_before_rotary_positions_existed_still_adds_its_sinusoids(tmp_path):
    tiny = ModelConfig(arch="transformer", d_model=32, heads=2, ff_size=64, enc_layers=1, dec_layers=1)
    path = save_untrained(tmp_path / "now.pt", dataclasses.replace(tiny, positions="sinusoidal"))
    old = load_checkpoint(path)
    del old["config"]["model"]["positions"]  # as saved before the option existed, when sinusoids were all there was
    save_checkpoint(tmp_path / "old.pt", old)

    (now, *_), (then, *_) = load_model(path), load_model(tmp_path / "old.pt")
    assert then.src_positions.sinusoids is not None and then.decoder_layers[0].self_attn.rotary is None
    src, trg_in = torch.tensor([[5, 6, 7, 2]]), torch.tensor([[1, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(
            then.eval()(src, torch.tensor([4]), trg_in), now.eval()(src, torch.tensor([4]), trg_in)
        )
