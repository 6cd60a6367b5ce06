"""augment: transforms and recipes that generate targeted training data (audio and image).

    from augment import Compose, OneOf, Sometimes, from_dict
    from augment.audio import AddBackgroundNoise, Gain
"""
from augment.core import REGISTRY, Compose, OneOf, SomeOf, Sometimes, Transform, catalogue, from_dict
from augment.params import ParameterError

__all__ = ["Transform", "Compose", "OneOf", "SomeOf", "Sometimes", "from_dict", "catalogue", "REGISTRY",
           "ParameterError"]
