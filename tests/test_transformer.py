"""The Transformer: masks, cached decoding, reorder, weight tying, training, and the attention
module against torch's own."""

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import ConfigError, ModelConfig
from nmt.models.transformer import MultiHeadAttention, RotaryPositions, Transformer
from nmt.specials import EOS, PAD, SOS

VOCAB = 20


def make_model(shared_vocab: bool = True, **overrides) -> Transformer:
    cfg = ModelConfig(
        arch="transformer", d_model=32, heads=2, ff_size=64, enc_layers=2, dec_layers=2, dropout=0.0, **overrides
    )
    return Transformer(cfg, src_vocab_size=VOCAB, trg_vocab_size=VOCAB, shared_vocab=shared_vocab).eval()


def random_batch(batch: int = 3, src_len: int = 7, trg_len: int = 6):
    """Sources of lengths src_len, src_len - 1, ... padded to src_len; targets start with SOS."""
    lengths = torch.tensor([max(1, src_len - i) for i in range(batch)])
    src = torch.randint(4, VOCAB, (batch, src_len))
    src[torch.arange(src_len)[None, :] >= lengths[:, None]] = PAD
    trg_in = torch.randint(4, VOCAB, (batch, trg_len))
    trg_in[:, 0] = SOS
    return src, lengths, trg_in


def decode_by_steps(model: Transformer, src, src_len, trg_in):
    """Logits (batch, trg_len, vocab) and attention (batch, trg_len, src_len) from step() alone."""
    encoded = model.encode(src, src_len)
    state = model.init_state(encoded)
    logits, attention = [], []
    for t in range(trg_in.size(1)):
        step_logits, state, weights = model.step(trg_in[:, t], state, encoded, need_attention=True)
        logits.append(step_logits)
        attention.append(weights)
    return torch.stack(logits, dim=1), torch.stack(attention, dim=1)


@torch.no_grad()
def test_future_target_tokens_do_not_change_earlier_outputs():
    model = make_model()
    src, src_len, trg_in = random_batch()
    before = model(src, src_len, trg_in)
    changed = trg_in.clone()
    changed[:, 3] = (changed[:, 3] - 4 + 1) % (VOCAB - 4) + 4
    after = model(src, src_len, changed)
    torch.testing.assert_close(after[:, :3], before[:, :3], rtol=0, atol=1e-6)
    assert not torch.allclose(after[:, 3:], before[:, 3:])


@torch.no_grad()
def test_source_padding_does_not_change_outputs():
    model = make_model()
    src = torch.tensor([[5, 6, 7, EOS]])
    trg_in = torch.tensor([[SOS, 8, 9, 10]])
    alone = model(src, torch.tensor([4]), trg_in)

    padded = F.pad(src, (0, 3), value=PAD)
    torch.testing.assert_close(model(padded, torch.tensor([4]), trg_in), alone, rtol=0, atol=1e-5)

    longer = torch.tensor([[11, 12, 13, 14, 15, 16, EOS]])
    batch = torch.cat([padded, longer])
    both = model(batch, torch.tensor([4, 7]), torch.cat([trg_in, trg_in]))
    torch.testing.assert_close(both[:1], alone, rtol=0, atol=1e-5)


@torch.no_grad()
def test_empty_source_gives_finite_outputs():
    model = make_model()
    src = torch.tensor([[5, 6, EOS], [PAD, PAD, PAD]])
    logits, attention = decode_by_steps(model, src, torch.tensor([3, 0]), torch.tensor([[SOS, 7], [SOS, 7]]))
    assert torch.isfinite(logits).all() and torch.isfinite(attention).all()


@pytest.mark.parametrize(
    "variant",
    [{}, {"norm": "post"}, {"positions": "learned"}, {"positions": "rotary"}, {"tie_embeddings": False}],
    ids=["pre-norm", "post-norm", "learned-positions", "rotary-positions", "untied"],
)
@torch.no_grad()
def test_cached_steps_equal_teacher_forcing(variant):
    model = make_model(**variant)
    src, src_len, trg_in = random_batch()
    full, full_attention = model.forward_attention(src, src_len, trg_in)
    torch.testing.assert_close(full, model(src, src_len, trg_in), rtol=0, atol=1e-5)
    stepped, step_attention = decode_by_steps(model, src, src_len, trg_in)
    torch.testing.assert_close(stepped, full, rtol=0, atol=1e-5)
    torch.testing.assert_close(step_attention, full_attention, rtol=0, atol=1e-5)


@torch.no_grad()
def test_attention_weights_are_distributions_over_real_tokens():
    model = make_model()
    src, src_len, trg_in = random_batch()
    _, attention = model.forward_attention(src, src_len, trg_in)  # (batch, trg_len, src_len)
    torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:2]))
    assert (attention.masked_select((src == PAD)[:, None, :]) == 0).all()


@torch.no_grad()
def test_reorder_then_step_equals_running_those_rows():
    model = make_model()
    src, src_len, trg_in = random_batch(batch=3, trg_len=5)
    encoded = model.encode(src, src_len)
    state = model.init_state(encoded)
    for t in range(2):
        _, state, _ = model.step(trg_in[:, t], state, encoded)

    # Beam search's pattern: keep some hypotheses, drop others, duplicate the best.
    index = torch.tensor([2, 0, 0])
    state = model.reorder(state, index)
    encoded_rows = encoded.index_select(index)
    logits = []
    for t in range(2, 5):
        step_logits, state, _ = model.step(trg_in[index, t], state, encoded_rows)
        logits.append(step_logits)

    direct, _ = decode_by_steps(model, src[index], src_len[index], trg_in[index])
    torch.testing.assert_close(torch.stack(logits, dim=1), direct[:, 2:], rtol=0, atol=1e-5)


@torch.no_grad()
def test_reorder_before_the_first_step_tiles_sentences_into_beams():
    model = make_model()
    src, src_len, trg_in = random_batch(batch=2)
    encoded = model.encode(src, src_len)
    index = torch.tensor([0, 0, 0, 1, 1, 1])
    state = model.reorder(model.init_state(encoded), index)
    logits, _, _ = model.step(trg_in[index, 0], state, encoded.index_select(index))
    direct, _, _ = model.step(trg_in[:, 0], model.init_state(encoded), encoded)
    torch.testing.assert_close(logits, direct[index], rtol=0, atol=1e-6)


@torch.no_grad()
def test_the_beams_of_a_sentence_read_one_copy_of_its_source():
    """Beam search keeps one encoder row per sentence for its k beams: each step, logits and
    attention alike, equals the one that reads a copy of the source per beam."""
    model = make_model()
    src, src_len, trg_in = random_batch(batch=3)
    encoded = model.encode(src, src_len)
    beams = torch.arange(3).repeat_interleave(4)  # four beams per sentence, on consecutive rows
    shared = model.reorder(model.init_state(encoded), beams)
    copied = model.reorder(model.init_state(encoded), beams)
    prev = torch.randint(4, VOCAB, (12, trg_in.size(1)))
    for t in range(trg_in.size(1)):
        logits, shared, weights = model.step(prev[:, t], shared, encoded, need_attention=True)
        expected, copied, expected_weights = model.step(
            prev[:, t], copied, encoded.index_select(beams), need_attention=True
        )
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(weights, expected_weights, rtol=0, atol=1e-6)


def test_tied_embeddings():
    shared = make_model(shared_vocab=True)
    assert shared.generator.weight is shared.trg_embed.weight
    assert shared.src_embed.weight is shared.trg_embed.weight

    separate = make_model(shared_vocab=False)
    assert separate.generator.weight is separate.trg_embed.weight
    assert separate.src_embed.weight is not separate.trg_embed.weight

    untied = make_model(shared_vocab=True, tie_embeddings=False)
    weights = {id(untied.generator.weight), id(untied.trg_embed.weight), id(untied.src_embed.weight)}
    assert len(weights) == 3
    assert sum(p.numel() for p in untied.parameters()) == sum(p.numel() for p in shared.parameters()) + 2 * VOCAB * 32


@pytest.mark.parametrize("variant", [{}, {"positions": "learned", "tie_embeddings": False}], ids=["tied", "untied"])
def test_one_optimizer_step_changes_every_parameter(variant):
    model = make_model(**variant).train()
    src, src_len, trg_in = random_batch()
    trg_out = torch.cat([trg_in[:, 1:], torch.full((trg_in.size(0), 1), EOS)], dim=1)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(src, src_len, trg_in).flatten(0, 1), trg_out.flatten(), ignore_index=PAD)
    loss.backward()
    optimizer.step()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    assert not unchanged


@pytest.mark.parametrize("need_weights", [False, True])
@torch.no_grad()
def test_attention_matches_torch_multihead_attention(need_weights):
    ours = MultiHeadAttention(d_model=16, heads=4, dropout=0.0)
    theirs = nn.MultiheadAttention(16, 4, batch_first=True)
    theirs.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
    theirs.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
    theirs.out_proj.weight.copy_(ours.out.weight)
    theirs.out_proj.bias.copy_(ours.out.bias)

    query, memory = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    attend = torch.tensor([[True] * 5, [True, True, False, False, False]])  # (batch, src_len)
    out, weights = ours(query, *ours.keys_values(memory), mask=attend[:, None, None, :], need_weights=need_weights)
    expected, expected_weights = theirs(query, memory, memory, key_padding_mask=~attend)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    if need_weights:
        torch.testing.assert_close(weights, expected_weights, rtol=0, atol=1e-6)


@torch.no_grad()
def test_rotary_positions_make_a_query_key_score_depend_on_their_offset_alone():
    rotary = RotaryPositions(d_head=8, max_positions=64)
    query, key = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(query_position: int, key_position: int) -> Tensor:
        return (rotary(query, query_position) * rotary(key, key_position)).sum()

    torch.testing.assert_close(score(3, 1), score(40, 38))
    torch.testing.assert_close(score(1, 3), score(50, 52))
    assert not torch.allclose(score(3, 1), score(3, 2))
    torch.testing.assert_close(rotary(query, 0), query)  # position 0: no rotation
    torch.testing.assert_close(rotary(query, 17).norm(), query.norm())  # a rotation keeps lengths


def test_rotary_positions_refuse_an_odd_head_size():
    with pytest.raises(ConfigError, match="even head size"):
        ModelConfig(arch="transformer", d_model=30, heads=2, positions="rotary")


def copy_data(count: int = 64, max_len: int = 5):
    """Random sentences of 2..max_len tokens; the target is the source."""
    lengths = torch.randint(2, max_len + 1, (count,))
    tokens = torch.randint(4, VOCAB, (count, max_len))
    tokens[torch.arange(max_len)[None, :] >= lengths[:, None]] = PAD
    src = F.pad(tokens, (0, 1), value=PAD)  # room for EOS
    src[torch.arange(count), lengths] = EOS
    trg_in = F.pad(tokens, (1, 0), value=SOS)
    return src, lengths + 1, trg_in, src  # trg_out = tokens + EOS, the same tensor as src


@pytest.mark.parametrize("positions", ["sinusoidal", "rotary"])
def test_overfits_a_copy_task_and_greedy_decoding_reproduces_it(positions):
    model = make_model(shared_vocab=True, positions=positions).train()
    src, src_len, trg_in, trg_out = copy_data()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        loss = F.cross_entropy(model(src, src_len, trg_in).flatten(0, 1), trg_out.flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]

    model.eval()
    with torch.no_grad():
        encoded = model.encode(src, src_len)
        state = model.init_state(encoded)
        prev = torch.full((src.size(0),), SOS)
        decoded = []
        for _ in range(src.size(1)):
            logits, state, _ = model.step(prev, state, encoded)
            prev = logits.argmax(dim=-1)
            decoded.append(prev)
    decoded = torch.stack(decoded, dim=1)  # (batch, src_len)
    real = trg_out != PAD
    assert torch.equal(decoded[real], trg_out[real])
