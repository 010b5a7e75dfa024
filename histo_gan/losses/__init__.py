"""Losses: adversarial, reconstruction, gradient penalty, replay buffer, segmentation, importance."""

from histo_gan.losses.adversarial import (
    GANLoss,
    HingeGANLoss,
    LSGANLoss,
    VanillaGANLoss,
    WassersteinGANLoss,
)
from histo_gan.losses.feature_matching import FeatureMatchingLoss
from histo_gan.losses.gradient_penalty import gradient_penalty
from histo_gan.losses.importance import ImportanceWeighting, importance_weights, real_probability
from histo_gan.losses.perceptual import VGGPerceptualLoss
from histo_gan.losses.reconstruction import (
    cycle_loss,
    foreground_weighted_l1,
    identity_loss,
    l1_loss,
    refiner_regularization,
)
from histo_gan.losses.refiner import (
    masked_mean,
    refiner_discriminator_loss,
    refiner_realism_loss,
)
from histo_gan.losses.replay import ReplayBuffer
from histo_gan.losses.segmentation import CrossEntropyDiceLoss

__all__ = [
    "CrossEntropyDiceLoss",
    "FeatureMatchingLoss",
    "GANLoss",
    "HingeGANLoss",
    "ImportanceWeighting",
    "LSGANLoss",
    "ReplayBuffer",
    "VGGPerceptualLoss",
    "VanillaGANLoss",
    "WassersteinGANLoss",
    "cycle_loss",
    "gradient_penalty",
    "identity_loss",
    "importance_weights",
    "foreground_weighted_l1",
    "l1_loss",
    "masked_mean",
    "real_probability",
    "refiner_discriminator_loss",
    "refiner_realism_loss",
    "refiner_regularization",
]
