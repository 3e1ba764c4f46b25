"""The reference implementation's recipe written directly in PyTorch: the peer the benchmarks time mat-keras against.

Only the benchmarks import this module (PyTorch is not a dependency of
mat-keras). It holds the reference implementation's CIFAR MobileNetV2 and MNIST MLP and a train
step with the reference implementation's weight noise: every forward pass draws
`w + N(0, (sd * 2 * max|w|)^2)` for every parameter, the gradient reaches the
clean weights (straight-through), and weights are optionally clipped to
`±clip_w * std` after the optimizer step.
"""

import torch
from torch import nn
from torch.func import functional_call

CIFAR_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 1), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value, divisor=8):
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(cin, cout, kernel, stride=1, groups=1, activation=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU6(inplace=True)] if activation else []))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expansion):
        super().__init__()
        hidden = cin * expansion
        layers = [conv_bn(cin, hidden, 1)] if expansion != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, activation=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class CifarMobileNetV2(nn.Module):
    """MobileNetV2 with the reference implementation's CIFAR table and a stride-1 stem."""

    def __init__(self, num_classes=10, width=0.4, dropout=0.2):
        super().__init__()
        channels = make_divisible(32 * width)
        layers = [conv_bn(3, channels, 3)]
        for expansion, c, repeats, stride in CIFAR_BLOCKS:
            out = make_divisible(c * width)
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out, stride if i == 0 else 1, expansion))
                channels = out
        last = make_divisible(1280 * max(1.0, width))
        layers.append(conv_bn(channels, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def mnist_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128, bias=False), nn.ReLU(), nn.Linear(128, 10, bias=False))


def noisy_parameters(model, sd):
    """Seed-style noise: one draw per parameter tensor, straight-through."""
    params = {}
    for name, p in model.named_parameters():
        scale = sd * 2 * p.detach().abs().max()
        params[name] = p + (torch.randn_like(p) * scale).detach()
    return params


def make_train_step(model, optimizer, sd=0.0, clip_w=None):
    """Returns `step(x, y) -> loss` for the reference implementation's recipe (noise when sd > 0)."""
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        if sd > 0:
            logits = functional_call(model, noisy_parameters(model, sd), (x,))
        else:
            logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        if clip_w:
            with torch.no_grad():
                for p in model.parameters():
                    bound = clip_w * p.std()
                    p.clamp_(-bound, bound)
        return loss

    return step
