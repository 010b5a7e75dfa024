"""Losses: adversarial, reconstruction, gradient penalty, image pool, segmentation, importance."""

from histo_gan.losses.adversarial import (
    GANLoss,
    HingeGANLoss,
    LSGANLoss,
    VanillaGANLoss,
    WassersteinGANLoss,
)
from histo_gan.losses.feature_matching import FeatureMatchingLoss
from histo_gan.losses.gradient_penalty import gradient_penalty
from histo_gan.losses.image_pool import ImagePool
from histo_gan.losses.importance import importance_weights, real_probability
from histo_gan.losses.perceptual import VGGPerceptualLoss
from histo_gan.losses.reconstruction import (
    cycle_loss,
    foreground_weighted_l1,
    identity_loss,
    l1_loss,
    refiner_regularization,
)
from histo_gan.losses.segmentation import CrossEntropyDiceLoss

__all__ = [
    "CrossEntropyDiceLoss",
    "FeatureMatchingLoss",
    "GANLoss",
    "HingeGANLoss",
    "ImagePool",
    "LSGANLoss",
    "VGGPerceptualLoss",
    "VanillaGANLoss",
    "WassersteinGANLoss",
    "cycle_loss",
    "gradient_penalty",
    "identity_loss",
    "importance_weights",
    "foreground_weighted_l1",
    "l1_loss",
    "real_probability",
    "refiner_regularization",
]
