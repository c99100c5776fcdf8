"""The CPU dropout: the mask torch's dropout would draw, statistically, at a fraction of its cost."""

import pytest
import torch

from nmt.models.dropout import Dropout, dropout, dropout_plain

ELEMENTS = 1 << 20  # the kept fraction's standard deviation is at most 0.0005


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_each_element_is_kept_with_probability_one_minus_p_and_scaled_so_the_mean_is_kept(p):
    torch.manual_seed(0)
    x = torch.rand(ELEMENTS) + 1
    y = dropout(x, p)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(1 - p, abs=0.003)
    torch.testing.assert_close(y[kept], x[kept] / (1 - p), rtol=1e-4, atol=0)
    assert dropout(torch.ones(ELEMENTS), p).mean().item() == pytest.approx(1.0, abs=0.006)


def test_every_16_bits_of_each_random_word_are_uniform():
    # random_() alone draws int64 values without the sign bit: every fourth element would be
    # kept far more often than the rest (5/8 in all at p = 0.5)
    torch.manual_seed(0)
    kept = dropout(torch.ones(ELEMENTS), 0.5) != 0
    for offset in range(4):
        assert kept[offset::4].float().mean().item() == pytest.approx(0.5, abs=0.004)


def test_the_same_seed_draws_the_same_mask_and_the_gradient_is_the_mask():
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(7)
    first = dropout(x, 0.2)
    torch.manual_seed(7)
    second = dropout(x, 0.2)
    assert torch.equal(first, second)
    first.sum().backward()
    torch.testing.assert_close(x.grad, (first != 0).float() / 0.8)


def test_evaluation_and_p_zero_pass_the_input_through_and_p_one_drops_everything():
    x = torch.randn(10, 7)
    layer = Dropout(0.3).eval()
    assert layer(x) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))


def test_a_layer_of_an_odd_number_of_elements_and_bf16_inputs_keep_their_shape_and_dtype():
    x = torch.randn(3, 5, 7, dtype=torch.bfloat16)
    y = Dropout(0.1).train()(x)
    assert y.shape == x.shape and y.dtype == torch.bfloat16


def test_a_probability_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(1.5)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 9)])
def test_the_fast_mask_is_the_plain_one_drawn_from_the_same_random_words(p, shape):
    x = torch.randn(shape)
    torch.manual_seed(11)
    fast = dropout(x, p)
    torch.manual_seed(11)
    assert torch.equal(dropout_plain(x, p), fast)
