import torch

from mnistgan import losses


def test_nonsaturating_matches_the_tutorials_formulas():
    torch.manual_seed(0)
    real, fake = torch.randn(50, dtype=torch.float64) * 3, torch.randn(50, dtype=torch.float64) * 3
    obj = losses.NonSaturating()
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    cost_d = torch.mean(torch.log(d_real) + torch.log(1 - d_fake))  # maximised by D
    cost_g = torch.mean(torch.log(d_fake))                           # maximised by G
    torch.testing.assert_close(obj.d_loss(real, fake), -cost_d, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(obj.g_loss(fake), -cost_g, rtol=1e-12, atol=1e-12)


def test_logits_keep_saturated_losses_finite():
    obj = losses.NonSaturating()
    huge = torch.tensor([200.0, -200.0])
    assert torch.isfinite(obj.d_loss(huge, huge)) and torch.isfinite(obj.g_loss(huge))
    # log(sigmoid(-200)) would be -inf through the sigmoid; from the logit it is -200.
    torch.testing.assert_close(obj.g_loss(torch.tensor([-200.0])), torch.tensor(200.0))


def test_minimax_generator_loss_is_log_one_minus_d():
    fake = torch.randn(20, dtype=torch.float64)
    expected = torch.mean(torch.log(1 - torch.sigmoid(fake)))
    torch.testing.assert_close(losses.Minimax().g_loss(fake), expected)


def test_least_squares_and_hinge():
    r, f = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 0.25])
    torch.testing.assert_close(losses.LeastSquares().d_loss(r, f),
                               0.5 * torch.tensor([0.25, 1.0]).mean() + 0.5 * torch.tensor([0.25, 0.0625]).mean())
    torch.testing.assert_close(losses.LeastSquares().g_loss(f), 0.5 * torch.tensor([2.25, 0.5625]).mean())
    torch.testing.assert_close(losses.Hinge().d_loss(r, f), torch.tensor([0.5, 0.0]).mean() + torch.tensor([0.5, 1.25]).mean())
    torch.testing.assert_close(losses.Hinge().g_loss(f), torch.tensor(0.125))
