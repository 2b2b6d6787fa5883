"""Objectives: each owns the maths of the discriminator (D) phase and the generator (G)
phase of a step, with its regularisers (label smoothing, gradient penalty, auxiliary
classifier, InfoGAN code, R1 and R2, mode seeking). A step calls `d_phase` and `g_phase`
of a `GANLoss` and never names a term.

Every objective works on D's logits l (D(x) = sigmoid(l)), because log(sigmoid(l))
computed as -softplus(-l) stays finite where log(D) of a saturated sigmoid would be -inf.
With r = D's logits on real images, f = on forgeries, E the batch mean, sp = softplus:

    objective        D minimises                          G minimises
    nonsaturating    E sp(-r) + E sp(f)                   E sp(-f)
      (smoothing s)  E[(1-s) sp(-r) + s sp(r)] + E sp(f)
    minimax          E sp(-r) + E sp(f)                   -E sp(f)    (= E log(1 - D(G(z))))
    lsgan            E (r-1)^2 / 2 + E f^2 / 2            E (f-1)^2 / 2
    hinge            E relu(1-r) + E relu(1+f)            -E f
    wgan-gp          E f - E r  (+ gradient penalty)      -E f
    relativistic     E sp(-(r - E f)) + E sp(f - E r)     E sp(-(f - E r)) + E sp(r - E f)
    rpgan            E sp(-(r_i - f_i))                   E sp(-(f_i - r_i))

Each objective takes the few settings it uses (`settings`, read from the config by
`objective_for`), never the config. Adding an objective touches this file (and its name in
registry.py) only; so does adding a regulariser (a `Term`, switched on in `terms_for`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from . import augment

Tensor = torch.Tensor


# ----------------------------------------------------------------------------- objectives
class Objective:
    """D minimises d_loss(real_logits, fake_logits); G minimises g_loss(fake_logits, real_logits).
    real_logits reach g_loss only when g_uses_real is set (else None): D is then run on the
    real batch in the G phase too."""

    gradient_penalty = False  # WGAN-GP: the D phase adds gp_lambda * E[(|grad D(x_hat)| - 1)^2]
    g_uses_real = False
    reports_cost_d = False    # the epoch row's cost_d / cost_g are the tutorial's -losses
    reports_cost_g = False
    settings: tuple[str, ...] = ()  # the config fields its constructor takes, by name

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        raise NotImplementedError


class NonSaturating(Objective):
    """Goodfellow et al. 2014, section 3, the seed's objective.
    D: maximise mean(log D(x) + log(1 - D(G(z))));  G: maximise mean(log D(G(z))).
    With one-sided label smoothing s (Salimans et al. 2016) the real target is 1 - s."""

    reports_cost_d = reports_cost_g = True
    settings = ("label_smoothing",)

    def __init__(self, label_smoothing: float = 0.0):
        self.s = label_smoothing

    def d_loss(self, real, fake):
        # -log D(x) = softplus(-l);  -log(1 - D(G(z))) = softplus(l)
        real_term = F.softplus(-real) if not self.s else (1 - self.s) * F.softplus(-real) + self.s * F.softplus(real)
        return real_term.mean() + F.softplus(fake).mean()

    def g_loss(self, fake, real=None):
        return F.softplus(-fake).mean()


class Minimax(NonSaturating):
    """Goodfellow et al. 2014, eq. 1, as written: G minimises mean(log(1 - D(G(z)))),
    which saturates (vanishing gradient) while D wins easily."""

    reports_cost_g = False

    def g_loss(self, fake, real=None):
        return -F.softplus(fake).mean()


class LeastSquares(Objective):
    """Mao et al. 2017 (LSGAN), targets a=0, b=c=1, on the raw logit."""

    def d_loss(self, real, fake):
        return 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean()

    def g_loss(self, fake, real=None):
        return 0.5 * (fake - 1).square().mean()


class Hinge(Objective):
    """Lim & Ye 2017; Miyato et al. 2018 (SNGAN)."""

    def d_loss(self, real, fake):
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, fake, real=None):
        return -fake.mean()


class Wasserstein(Objective):
    """Arjovsky et al. 2017 with the gradient penalty of Gulrajani et al. 2017 (the
    GradientPenalty term): the critic maximises E D(x) - E D(G(z))."""

    gradient_penalty = True

    def d_loss(self, real, fake):
        return fake.mean() - real.mean()

    def g_loss(self, fake, real=None):
        return -fake.mean()


class RelativisticAverage(Objective):
    """Jolicoeur-Martineau 2018 (RaGAN, the relativistic average standard GAN): D judges
    whether a real image is more realistic than the average forgery, and a forgery less
    realistic than the average real image; G the reverse, so G's loss sees real logits.
        D: -E log sig(C(x) - E C(G(z))) - E log(1 - sig(C(G(z)) - E C(x)))
        G: -E log sig(C(G(z)) - E C(x)) - E log(1 - sig(C(x) - E C(G(z))))
    Under torchrun the averages E C(.) are over each process's slice of the batch, not the
    global batch (the one objective here whose loss couples the rows of a batch)."""

    g_uses_real = True

    def d_loss(self, real, fake):
        return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()

    def g_loss(self, fake, real=None):
        return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()


class RelativisticPairing(Objective):
    """The relativistic pairing GAN (RpGAN; Jolicoeur-Martineau 2018, as R3GAN uses it): the
    i-th real image and the i-th forgery of a batch form a pair, and D judges which of the
    two is the real one; G the reverse.
        D: E softplus(-(C(x_i) - C(G(z_i))));  G: E softplus(-(C(G(z_i)) - C(x_i)))
    Unlike the standard loss its landscape has no bad local minima that drop modes (Sun et
    al. 2020); with R1 and R2 it converges locally (Huang et al. 2024)."""

    g_uses_real = True

    def d_loss(self, real, fake):
        return F.softplus(-(real - fake)).mean()

    def g_loss(self, fake, real=None):
        return F.softplus(-(fake - real)).mean()


OBJECTIVES: dict[str, type[Objective]] = {
    "minimax": Minimax,
    "nonsaturating": NonSaturating,
    "lsgan": LeastSquares,
    "hinge": Hinge,
    "wgan-gp": Wasserstein,
    "relativistic": RelativisticAverage,
    "rpgan": RelativisticPairing,
}


def objective_for(config) -> Objective:
    """The config's objective, given the settings it takes and nothing else."""
    cls = OBJECTIVES[config.objective]
    return cls(**{name: getattr(config, name) for name in cls.settings})


# ----------------------------------------------------------------------------- a step's tensors
@dataclass
class Batch:
    """What both phases of one step see: this process's part of the global batch."""
    real: Tensor                    # B x C x 28 x 28 real images in [0, 1]
    labels: Tensor | None           # their classes, when D is told classes (conditional models)
    z: Tensor | None                # the noise G was given
    codes: Tensor | None            # what G was given besides: classes (conditional) or InfoGAN codes
    fake: Tensor                    # G(z, codes), carrying G's graph when G is updated this step

    @property
    def fake_labels(self) -> Tensor | None:
        """The classes D is told of the forgeries: those G was asked for (conditional models)."""
        return self.codes if self.labels is not None else None


class Draws:
    """The random draws a phase makes (augmentation, the gradient penalty's mixing), from the
    run's noise stream: drawn for the global batch, this process's part kept, so that a
    resumed or multi-process run draws what one uninterrupted process would."""

    def __init__(self, noise: torch.Generator, size: int | None = None, part: slice | None = None,
                 device: torch.device | str = "cpu"):
        self.noise, self.size, self.part, self.device = noise, size, part, device

    def __call__(self, draw: Callable[..., Tensor], *shape: int, size: int | None = None) -> Tensor:
        """draw(global size, *shape, generator=, device=), this process's part of it; `size`
        stands in for the global batch when none was given (a test's batch)."""
        out = draw(self.size or size, *shape, generator=self.noise, device=self.device)
        return out if self.part is None else out[self.part]


@dataclass
class DOutputs:
    """D's verdicts in the D phase (fake detached from G)."""
    real: Tensor                    # the real images as D saw them (requires grad for R1)
    real_logits: Tensor
    fake_logits: Tensor
    real_head: Tensor | None        # classifier-head logits, when D has a head
    fake_head: Tensor | None
    fake: Tensor | None = None      # the forgeries as given to D, detached from G (requires grad for R2)


@dataclass
class GOutputs:
    """D's verdicts in the G phase (through the updated, frozen D)."""
    fake_logits: Tensor
    fake_head: Tensor | None
    real_logits: Tensor | None      # only for objectives with g_uses_real


class Critic:
    """How the phases call D, in three named ways: `judge_pair` (the D phase: real images and
    forgeries), `judge` (the G phase: one set) and `raw_logits` (the penalties). The first two
    run under the run's autocast and return float logits with the head's logits (or None).
    `joint` runs real and forged rows in one pass (same maths, half the kernels); a D with
    batch norm must not, or its batch statistics would mix them. `synced` is D as the D phase
    calls it: under DDP the wrapper that all-reduces its gradients."""

    def __init__(self, D: Callable, head: bool, joint: bool, autocast: Callable[[], contextlib.AbstractContextManager],
                 synced: Callable | None = None):
        self.D, self.head, self.joint, self.autocast = D, head, joint, autocast
        self.synced = D if synced is None else synced

    def _call(self, D, x, labels):
        out = D(x, labels, classes=True) if self.head else (D(x, labels), None)
        return out[0].float(), out[1]

    def judge_pair(self, real: Tensor, fake: Tensor, real_labels, fake_labels):
        """(real logits, fake logits, real head, fake head), D as the D phase calls it."""
        with self.autocast():
            if self.joint:
                both = None if fake_labels is None else torch.cat([real_labels, fake_labels])
                logits, classes = self._call(self.synced, torch.cat([real, fake.to(real.dtype)]), both)
                B = logits.shape[0] // 2  # real rows first (a packed D gives one row per pack)
                heads = (classes[:B], classes[B:]) if self.head else (None, None)
                return logits[:B], logits[B:], *heads
            real_logits, real_head = self._call(self.synced, real, real_labels)
            fake_logits, fake_head = self._call(self.synced, fake, fake_labels)
            return real_logits, fake_logits, real_head, fake_head

    def judge(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """(logits, head logits or None) of one set of images, D as the G phase calls it."""
        with self.autocast():
            return self._call(self.D, x, labels)

    def raw_logits(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """Float logits of D on x, outside autocast and without the head (for penalties)."""
        return self.D(x, labels).float()


# ----------------------------------------------------------------------------- regularisers
class Term:
    """A regulariser: adds to the D-phase loss, the G-phase loss, or both (None: nothing)."""

    needs_real_grad = False  # D must see real images that require grad (R1)
    needs_fake_grad = False  # ... and forgeries that do (R2)
    lazy = False             # its D term is added on regularising steps only (GANLoss.d_phase)

    def d(self, batch: Batch, out: DOutputs, critic: Critic, draws: Draws) -> Tensor | None:
        return None

    def g(self, batch: Batch, out: GOutputs) -> Tensor | None:
        return None


class AuxiliaryClassifier(Term):
    """Odena et al. 2017's auxiliary classifier on D's head, with weight w in both losses.
    D's classifier learns from real images only, so that G is pulled toward digits a
    classifier of real digits recognises (Odena et al. also train it on forgeries, which
    rewards forgeries that are merely easy to classify); G's forgeries of class k should be
    classified as k.

    twin: TAC-GAN (Gong et al. 2019). Minimising the classifier's cross-entropy alone pulls
    G toward forgeries far from the class boundaries (AC-GAN's known loss of within-class
    variety: it minimises a conditional entropy as well as the divergence). The head's second
    half is a twin classifier that learns the classes of forgeries; G's loss subtracts the
    twin's cross-entropy, which cancels that entropy term."""

    def __init__(self, weight: float, twin: bool = False):
        self.w, self.twin = weight, twin

    @staticmethod
    def _halves(head: Tensor) -> tuple[Tensor, Tensor]:
        """(real classifier, twin) logits of a twin head: its first and second halves."""
        k = head.shape[1] // 2
        return head[:, :k].float(), head[:, k:].float()

    def d(self, batch, out, critic, draws):
        if not self.twin:
            return self.w * F.cross_entropy(out.real_head.float(), batch.labels)
        real_classes = self._halves(out.real_head)[0]
        twin_classes = self._halves(out.fake_head)[1]  # (on forgeries detached from G)
        return self.w * (F.cross_entropy(real_classes, batch.labels)
                         + F.cross_entropy(twin_classes, batch.fake_labels))

    def g(self, batch, out):
        if not self.twin:
            return self.w * F.cross_entropy(out.fake_head.float(), batch.fake_labels)
        classes, twin = self._halves(out.fake_head)
        return self.w * (F.cross_entropy(classes, batch.fake_labels) - F.cross_entropy(twin, batch.fake_labels))


class InfoCode(Term):
    """InfoGAN's mutual-information term (lambda = 1 for a categorical code, Chen et al.
    2016): D's head must recover the code from the forgery, and G is trained to make it
    recoverable, so each code draws a distinct kind of image. Uses no labels."""

    def d(self, batch, out, critic, draws):
        return F.cross_entropy(out.fake_head.float(), batch.codes)

    def g(self, batch, out):
        return F.cross_entropy(out.fake_head.float(), batch.codes)


class GradientPenalty(Term):
    """lambda E[(|grad D(x_hat)|_2 - 1)^2], x_hat = e x + (1 - e) G(z), e ~ U(0, 1) per
    sample (Gulrajani et al. 2017, algorithm 1)."""

    def __init__(self, weight: float):
        self.w = weight

    def d(self, batch, out, critic, draws):
        real, fake = batch.real, batch.fake.detach()
        e = draws(torch.rand, 1, 1, 1, size=len(real))
        x_hat = (e * real.detach() + (1 - e) * fake).requires_grad_(True)
        logits = critic.raw_logits(x_hat, batch.labels)
        (grad,) = torch.autograd.grad(logits.sum(), x_hat, create_graph=True)
        # the norm of D's gradient with respect to its input: an image, or a pack of images
        return self.w * (grad.reshape(len(logits), -1).norm(dim=1) - 1).square().mean()


class ZeroCentred(Term):
    """Zero-centred gradient penalties: R1, gamma_1/2 E|grad_x D(x)|^2 on real images
    (Mescheder et al. 2018), and R2, gamma_2/2 E|grad_x D(G(z))|^2 on forgeries (the same on
    the other side; Roth et al. 2017, R3GAN). Both in one double-backward pass when both are
    on: the rows of D's verdicts are independent (D has no batch norm with either), so the
    gradient of the summed verdicts with respect to each input is that input's own."""

    lazy = True  # with reg_every = k: on every k-th D step, with gammas k times as large (terms_for)

    def __init__(self, r1: float, r2: float):
        self.r1, self.r2 = r1, r2
        self.needs_real_grad, self.needs_fake_grad = r1 > 0, r2 > 0

    def d(self, batch, out, critic, draws):
        sides = ([(self.r1, out.real_logits, out.real)] if self.r1 else []) \
            + ([(self.r2, out.fake_logits, out.fake)] if self.r2 else [])
        total = sum(logits.sum() for _, logits, _ in sides)
        grads = torch.autograd.grad(total, [x for _, _, x in sides], create_graph=True)
        penalty = None
        for (gamma, logits, _), grad in zip(sides, grads):
            norms = grad.square().sum(dim=(1, 2, 3))  # |grad|^2 per image
            if len(logits) < len(norms):  # per input of D: a packed D's is a pack of images
                norms = norms.reshape(len(logits), -1).sum(1)
            term = gamma / 2 * norms.mean()
            penalty = term if penalty is None else penalty + term
        return penalty


class ModeSeeking(Term):
    """The mode-seeking term of MSGAN (Mao et al. 2019) against within-class collapse: G is
    asked to keep forgeries of one class as far apart as their noise vectors are. For every
    pair of forgeries in the batch with the same class (all pairs when unconditional),
    ratio = mean |G(z1) - G(z2)| / mean |z1 - z2| (L1 per element); G's loss adds
    w / (mean ratio + 1e-5). D is untouched."""

    def __init__(self, weight: float):
        self.w = weight

    def g(self, batch, out):
        x = batch.fake.float().flatten(1)
        z = batch.z.float()
        n = x.shape[0]
        pair = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        if batch.fake_labels is not None:
            pair &= batch.fake_labels[:, None] == batch.fake_labels[None, :]
        if not bool(pair.any()):
            return None
        d_img = torch.cdist(x, x, p=1) / x.shape[1]
        d_z = torch.cdist(z, z, p=1) / z.shape[1]
        ratio = (d_img[pair] / d_z[pair].clamp_min(1e-8)).mean()
        return self.w / (ratio + 1e-5)


def terms_for(config, objective: Objective) -> list[Term]:
    """The regularisers a config switches on, in the order their losses are added."""
    terms: list[Term] = []
    if config.aux_weight:
        terms.append(AuxiliaryClassifier(config.aux_weight, config.aux_twin))
    if config.info_code:
        terms.append(InfoCode())
    if objective.gradient_penalty:
        terms.append(GradientPenalty(config.gp_lambda))
    if config.r1_gamma or config.r2_gamma:  # lazily (StyleGAN2): every reg_every-th step, reg_every times as strong
        terms.append(ZeroCentred(config.r1_gamma * config.reg_every, config.r2_gamma * config.reg_every))
    if config.mode_seeking:
        terms.append(ModeSeeking(config.mode_seeking))
    return terms


# ----------------------------------------------------------------------------- the phases
class GANLoss:
    """One objective with its regularisers: the losses of the D phase and the G phase.
    `loss_for` builds the one a config asks for."""

    def __init__(self, objective: Objective, terms: list[Term], critic: Critic, draws: Draws,
                 policies: list[str] | None = None):
        self.objective, self.terms, self.critic, self.draws = objective, terms, critic, draws
        self.augment = policies or []

    def _seen(self, x: Tensor) -> Tensor:
        """x as D sees it: through the differentiable augmentation when there is one."""
        return augment.augment(x, self.augment, lambda fn, *shape: self.draws(fn, *shape, size=len(x))) \
            if self.augment else x

    def d_phase(self, b: Batch, regularise: bool = True) -> tuple[Tensor, DOutputs]:
        """D's loss on a real batch and detached forgeries, and D's verdicts; the lazy terms
        (R1, R2) only when `regularise` (every reg_every-th D step)."""
        # (read from self.terms each step: a few flags, and a caller may change the terms)
        terms = self.terms if regularise else [t for t in self.terms if not t.lazy]
        real = b.real.detach().requires_grad_(True) if any(t.needs_real_grad for t in terms) else b.real
        fake = b.fake.detach().requires_grad_(True) if any(t.needs_fake_grad for t in terms) else b.fake.detach()
        # (R1 and R2 differentiate D's verdicts on the images given, through the augmentation.)
        out = DOutputs(real, *self.critic.judge_pair(self._seen(real), self._seen(fake), b.labels, b.fake_labels),
                       fake=fake)
        loss = self.objective.d_loss(out.real_logits, out.fake_logits)
        for term in terms:
            extra = term.d(b, out, self.critic, self.draws)
            if extra is not None:
                loss = loss + extra
        return loss, out

    def g_phase(self, b: Batch) -> tuple[Tensor, GOutputs]:
        """G's loss through the (frozen) D; the caller freezes D's parameters."""
        fake_logits, fake_head = self.critic.judge(self._seen(b.fake), b.fake_labels)
        real_logits = self.critic.judge(self._seen(b.real), b.labels)[0] if self.objective.g_uses_real else None
        out = GOutputs(fake_logits, fake_head, real_logits)
        loss = self.objective.g_loss(out.fake_logits, out.real_logits)
        for term in self.terms:
            extra = term.g(b, out)
            if extra is not None:
                loss = loss + extra
        return loss, out


def loss_for(config, critic: Critic, draws: Draws | None = None) -> GANLoss:
    """The GANLoss a config asks for: its objective, regularisers and augmentation."""
    objective = objective_for(config)
    return GANLoss(objective, terms_for(config, objective), critic, draws or Draws(torch.Generator()),
                   augment.parse(config.diffaugment))
