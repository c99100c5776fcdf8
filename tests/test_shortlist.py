"""The output layer cut to the target side's tokens (nmt.models.shortlist): training scores only
them (by default), a checkpoint lists them, translation searches only them, and that search is the
search over every token with the others forbidden."""

import dataclasses

import pytest
import torch
from tiny_checkpoints import TINY_RNN, save_untrained, train_tiny
from torch import nn

from nmt.checkpoint import load_checkpoint, load_model, save_checkpoint, stored_config
from nmt.commands.translate import main
from nmt.config import ModelConfig
from nmt.corpora import demo_pairs
from nmt.data import make_batch
from nmt.loss import sequence_loss
from nmt.models import build_model
from nmt.models.shortlist import Shortlisted, positions_in_list
from nmt.specials import EOS, PAD, SOS, SPECIALS, UNK
from nmt.translator import Translator
from nmt.vocab import Lang

LINES = ["one hundred and twenty-two", "seven thousand, two hundred and twenty", "nine", "forty-five"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Trained as by default: over the tokens of its training targets only (long enough that no
    translation of LINES is empty)."""
    return train_tiny(tmp_path_factory.mktemp("tiny"), steps=100)


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory):
    """Trained over every token of the joint vocabulary (--output-vocab full)."""
    return train_tiny(tmp_path_factory.mktemp("tiny-full"), model=dataclasses.replace(TINY_RNN, output_vocab="full"))


class Forbidding(nn.Module):
    """The full model, with every token outside ``allowed`` given logit -inf at each step."""

    def __init__(self, model, allowed: list[int]):
        super().__init__()
        self.model = model
        self.trg_vocab_size = model.trg_vocab_size
        self.forbidden = torch.ones(model.trg_vocab_size, dtype=torch.bool)
        self.forbidden[allowed] = False

    def encode(self, src, src_len):
        return self.model.encode(src, src_len)

    def init_state(self, encoded):
        return self.model.init_state(encoded)

    def step(self, prev, state, encoded, *, need_attention=False):
        logits, state, attn = self.model.step(prev, state, encoded, need_attention=need_attention)
        return logits.masked_fill(self.forbidden, float("-inf")), state, attn

    def reorder(self, state, index):
        return self.model.reorder(state, index)


def test_a_checkpoint_lists_its_training_targets_tokens_and_no_source_only_word(checkpoint):
    listed = load_checkpoint(checkpoint)["output_ids"]
    tok = Translator.from_checkpoint(checkpoint).trg_tok  # joint: English and French words
    assert listed[:4] == [PAD, SOS, EOS, UNK] and listed == sorted(set(listed))
    assert {tok.encode(w)[0] for w in ("mille", "cent", "vingt-deux", "neuf")} <= set(listed)
    assert not {tok.encode(w)[0] for w in ("thousand", "hundred", "and", "nine")} & set(listed)


@pytest.mark.parametrize("options", [{}, {"beam_size": 5, "n_best": 3}])
def test_searching_the_list_is_searching_every_token_with_the_others_forbidden(full_checkpoint, options):
    shortlisted = Translator.from_checkpoint(full_checkpoint)
    full = Translator.from_checkpoint(full_checkpoint, output_vocab="full")
    assert shortlisted.model.trg_vocab_size < full.model.trg_vocab_size
    forbidding = Translator(Forbidding(full.model, shortlisted.output_ids), full.src_tok, full.trg_tok)
    got, expected = shortlisted.translate_n_best(LINES, **options), forbidding.translate_n_best(LINES, **options)
    assert [t.tokens for t in got] == [t.tokens for t in expected]
    assert [t.hypotheses for t in got] == [t.hypotheses for t in expected]
    assert [t.scores for t in got] == [pytest.approx(t.scores, abs=1e-5) for t in expected]


def test_int8_and_ensembles_search_the_list_too(checkpoint):
    listed = load_checkpoint(checkpoint)["output_ids"]
    translator = Translator.from_checkpoint([checkpoint, checkpoint], quantize="int8")
    assert translator.output_ids == listed
    for translation in translator.translate_n_best(LINES, beam_size=3):
        assert set(translation.tokens[0]) <= set(listed) and translation.hypotheses[0]


def test_a_checkpoint_that_lists_no_outputs_keeps_them_all(tmp_path):
    translator = Translator.from_checkpoint(save_untrained(tmp_path / "untrained.pt", TINY_RNN))
    assert translator.output_ids is None
    assert translator.model.trg_vocab_size == len(translator.trg_tok)


def test_translate_py_takes_output_vocab_full(full_checkpoint, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    full = Translator.from_checkpoint(full_checkpoint, output_vocab="full").translate(LINES, beam_size=1)
    command = ["--checkpoint", str(full_checkpoint), "--input", str(source), "--output-vocab", "full", "--beam", "1"]
    assert main(command) == 0
    assert capsys.readouterr().out.splitlines() == full


def test_a_model_trained_over_its_list_refuses_the_full_vocabulary_in_one_line(checkpoint, tmp_path, capsys):
    with pytest.raises(ValueError, match="trained to score only the tokens of its training targets"):
        Translator.from_checkpoint(checkpoint, output_vocab="full")
    source = tmp_path / "in.txt"
    source.write_text("nine\n", encoding="utf-8")
    assert main(["--checkpoint", str(checkpoint), "--input", str(source), "--output-vocab", "full"]) != 0
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(checkpoint) in error and "full output vocabulary" in error


def test_a_checkpoint_from_before_output_vocab_is_a_model_of_every_token(checkpoint, tmp_path):
    old = load_checkpoint(checkpoint)
    del old["config"]["model"]["output_vocab"]  # as saved before the option existed
    save_checkpoint(tmp_path / "old.pt", old)
    assert stored_config(old).model.output_vocab == "full"
    translator = Translator.from_checkpoint(tmp_path / "old.pt", output_vocab="full")
    assert translator.output_ids is None and translator.model.trg_vocab_size == len(translator.trg_tok)


def test_an_ensemble_of_models_trained_over_different_lists_is_refused(checkpoint, tmp_path):
    other = load_checkpoint(checkpoint)
    other["output_ids"] = other["output_ids"][:-1]
    save_checkpoint(tmp_path / "other.pt", other)
    with pytest.raises(ValueError, match="trained over different output tokens"):
        Translator.from_checkpoint([checkpoint, tmp_path / "other.pt"])


def test_training_over_the_list_is_the_full_softmax_with_the_other_tokens_forbidden(full_checkpoint):
    """Same logits for the listed tokens, the same cross-entropy as the full layer with the rest
    at -inf, and gradients that reach the full (tied) matrix at the listed rows only."""
    full, tok, _, _ = load_model(full_checkpoint)
    listed = load_model(full_checkpoint)[0]
    ids = torch.tensor(load_checkpoint(full_checkpoint)["output_ids"])
    listed.list_outputs(ids)
    batch = make_batch([(tok.encode(line), tok.encode(line)) for line in LINES])
    trg_out = ids[torch.randint(len(SPECIALS), len(ids), batch.trg_out.shape)].masked_fill(batch.trg_out == PAD, PAD)
    forbidden = torch.ones(len(tok), dtype=torch.bool)
    forbidden[ids] = False

    full_logits = full(batch.src, batch.src_len, batch.trg_in)
    listed_logits = listed(batch.src, batch.src_len, batch.trg_in)
    torch.testing.assert_close(listed_logits, full_logits[..., ids])
    expected = sequence_loss(full_logits.masked_fill(forbidden, float("-inf")), trg_out).objective
    got = sequence_loss(listed_logits, positions_in_list(ids.tolist(), len(tok))[trg_out]).objective
    torch.testing.assert_close(got, expected)

    got.backward()
    bias = listed.decoder.out_proj.bias
    assert bias.grad.shape == (len(tok),) and not bias.grad[forbidden].any() and bias.grad[ids].any()


def test_free_running_training_over_the_list_feeds_back_listed_tokens(checkpoint):
    """Scheduled sampling draws a position among the scored outputs: the decoder must read its id."""
    model = load_model(checkpoint)[0].train()
    ids = torch.tensor(load_checkpoint(checkpoint)["output_ids"])
    model.list_outputs(ids)
    read = []
    model.decoder.embed.register_forward_hook(lambda module, args, out: read.append(args[0]))
    src = torch.tensor([[5, 6, 7], [8, 9, PAD]])
    model(src, torch.tensor([3, 2]), torch.full((2, 6), SOS), teacher_forcing=0.0)
    sampled = torch.cat([r.flatten() for r in read[2:]])  # first the source (one matrix for both sides), the references
    assert len(sampled) == 2 * 5 and set(sampled.tolist()) <= set(ids.tolist())


def test_a_list_must_be_sorted_and_start_with_the_specials(full_checkpoint, checkpoint):
    model = Translator.from_checkpoint(full_checkpoint, output_vocab="full").model
    with pytest.raises(ValueError, match="sorted and start with the specials"):
        Shortlisted(model, [PAD, SOS, EOS, UNK, 9, 7])
    with pytest.raises(ValueError, match="sorted and start with the specials"):
        Shortlisted(model, [PAD, EOS, UNK, 7])
    with pytest.raises(ValueError, match="unknown output vocabulary 'some'"):
        Translator.from_checkpoint(checkpoint, output_vocab="some")


def test_teacher_forcing_the_list_gives_the_full_models_logits_of_the_listed_tokens(full_checkpoint):
    shortlisted = Translator.from_checkpoint(full_checkpoint)
    full = Translator.from_checkpoint(full_checkpoint, output_vocab="full")
    ids = torch.tensor(shortlisted.output_ids)
    batch = make_batch([(full.src_tok.encode(line), []) for line in LINES])
    positions = torch.randint(len(SPECIALS), len(ids), (len(LINES), 5))  # (batch, trg_len) in the list
    with torch.inference_mode():
        got = shortlisted.model(batch.src, batch.src_len, positions)
        expected = full.model(batch.src, batch.src_len, ids[positions])[..., ids]
    torch.testing.assert_close(got, expected)


def test_a_transformer_over_its_list_scores_the_full_layers_listed_columns_in_training_and_steps():
    pairs = demo_pairs(n=200)
    tok = Lang.build([s for pair in pairs for s in pair], name="joint")
    config = ModelConfig(arch="transformer", d_model=32, heads=2, ff_size=64, enc_layers=2, dec_layers=2, dropout=0.0)
    full = build_model(config, tok, tok).eval()
    listed = build_model(config, tok, tok).eval()
    listed.load_state_dict(full.state_dict())
    ids = torch.tensor(
        sorted(set(range(len(SPECIALS))) | {tok.encode(w)[0] for w in ("mille", "cent", "neuf", "vingt")})
    )
    listed.list_outputs(ids)
    batch = make_batch([(tok.encode(en), tok.encode(fr)) for en, fr in pairs[:4]])
    with torch.no_grad():
        torch.testing.assert_close(
            listed(batch.src, batch.src_len, batch.trg_in), full(batch.src, batch.src_len, batch.trg_in)[..., ids]
        )
        encoded = full.encode(batch.src, batch.src_len)
        prev = torch.full((4,), SOS)
        got, _, _ = listed.step(prev, listed.init_state(encoded), encoded)
        expected, _, _ = full.step(prev, full.init_state(encoded), encoded)
    torch.testing.assert_close(got, expected[:, ids])
    assert listed.trg_vocab_size == len(ids)
