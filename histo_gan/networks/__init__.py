"""Pure ``nn.Module`` networks (no Lightning)."""

from histo_gan.networks.init import init_weights
from histo_gan.networks.norm import make_norm
from histo_gan.networks.patchgan import PatchDiscriminator, patchgan_receptive_field
from histo_gan.networks.refiner import PairDiscriminator, ReferenceRefiner, TextureEncoder
from histo_gan.networks.resnet_generator import ResnetGenerator
from histo_gan.networks.segmenter import SmpUnet
from histo_gan.networks.unet_generator import UnetGenerator

__all__ = [
    "PairDiscriminator",
    "PatchDiscriminator",
    "ReferenceRefiner",
    "ResnetGenerator",
    "SmpUnet",
    "TextureEncoder",
    "UnetGenerator",
    "init_weights",
    "make_norm",
    "patchgan_receptive_field",
]
