"""Pure ``nn.Module`` networks (no Lightning)."""

from histo_gan.networks.attention import CrissCrossAttention
from histo_gan.networks.daff import DAFFGenerator, DAFFLocalEnhancer, SkipFusion
from histo_gan.networks.init import (
    IdentityRefinerInit,
    NormalInit,
    TorchDefaultInit,
    WeightInit,
    init_weights,
)
from histo_gan.networks.norm import make_norm
from histo_gan.networks.patchgan import PatchDiscriminator, patchgan_receptive_field
from histo_gan.networks.pix2pixhd import (
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    downsample2x,
)
from histo_gan.networks.refiner import PairDiscriminator, ReferenceRefiner, TextureEncoder
from histo_gan.networks.resnet_generator import ResnetGenerator
from histo_gan.networks.segmenter import SmpUnet
from histo_gan.networks.unet_generator import UnetGenerator

__all__ = [
    "CrissCrossAttention",
    "DAFFGenerator",
    "DAFFLocalEnhancer",
    "GlobalGenerator",
    "IdentityRefinerInit",
    "LocalEnhancer",
    "MultiscaleDiscriminator",
    "NormalInit",
    "PairDiscriminator",
    "PatchDiscriminator",
    "ReferenceRefiner",
    "ResnetGenerator",
    "SkipFusion",
    "SmpUnet",
    "TextureEncoder",
    "TorchDefaultInit",
    "UnetGenerator",
    "WeightInit",
    "downsample2x",
    "init_weights",
    "make_norm",
    "patchgan_receptive_field",
]
