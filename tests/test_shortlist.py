"""The output layer cut to the target side's tokens (nmt.models.shortlist): a checkpoint lists
them, translation searches only them, and that search is the search over every token with the
others forbidden."""

import pytest
import torch
from tiny_checkpoints import TINY_RNN, save_untrained, train_tiny
from torch import nn

from nmt.checkpoint import load_checkpoint
from nmt.commands.translate import main
from nmt.data import make_batch
from nmt.models.shortlist import Shortlisted
from nmt.specials import EOS, PAD, SOS, SPECIALS, UNK
from nmt.translator import Translator

LINES = ["one hundred and twenty-two", "seven thousand, two hundred and twenty", "nine", "forty-five"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("tiny"))


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
    tok = Translator.from_checkpoint(checkpoint, output_vocab="full").trg_tok  # joint: English and French words
    assert listed[:4] == [PAD, SOS, EOS, UNK] and listed == sorted(set(listed))
    assert {tok.encode(w)[0] for w in ("mille", "cent", "vingt-deux", "neuf")} <= set(listed)
    assert not {tok.encode(w)[0] for w in ("thousand", "hundred", "and", "nine")} & set(listed)


@pytest.mark.parametrize("options", [{}, {"beam_size": 5, "n_best": 3}])
def test_searching_the_list_is_searching_every_token_with_the_others_forbidden(checkpoint, options):
    shortlisted = Translator.from_checkpoint(checkpoint)
    full = Translator.from_checkpoint(checkpoint, output_vocab="full")
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


def test_translate_py_takes_output_vocab_full(checkpoint, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    full = Translator.from_checkpoint(checkpoint, output_vocab="full").translate(LINES)
    assert main(["--checkpoint", str(checkpoint), "--input", str(source), "--output-vocab", "full", "--beam", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == full


def test_a_list_must_be_sorted_and_start_with_the_specials(checkpoint):
    model = Translator.from_checkpoint(checkpoint, output_vocab="full").model
    with pytest.raises(ValueError, match="sorted and start with the specials"):
        Shortlisted(model, [PAD, SOS, EOS, UNK, 9, 7])
    with pytest.raises(ValueError, match="sorted and start with the specials"):
        Shortlisted(model, [PAD, EOS, UNK, 7])
    with pytest.raises(ValueError, match="unknown output vocabulary 'some'"):
        Translator.from_checkpoint(checkpoint, output_vocab="some")


def test_teacher_forcing_the_list_gives_the_full_models_logits_of_the_listed_tokens(checkpoint):
    shortlisted = Translator.from_checkpoint(checkpoint)
    full = Translator.from_checkpoint(checkpoint, output_vocab="full")
    ids = torch.tensor(shortlisted.output_ids)
    batch = make_batch([(full.src_tok.encode(line), []) for line in LINES])
    positions = torch.randint(len(SPECIALS), len(ids), (len(LINES), 5))  # (batch, trg_len) in the list
    with torch.inference_mode():
        got = shortlisted.model(batch.src, batch.src_len, positions)
        expected = full.model(batch.src, batch.src_len, ids[positions])[..., ids]
    torch.testing.assert_close(got, expected)
