"""Image transforms (uint8 HxW or HxWxC): any albumentations transform, realistic defects, and image I/O.

albumentations is imported on first use, with NO_ALBUMENTATIONS_UPDATE=1 so the import makes no network request.
"""
from __future__ import annotations

import os


def albumentations_module():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations


from augment.image.albu import Albumentations  # noqa: E402
from augment.image.defects import Discoloration, Dust, Scratch  # noqa: E402
from curate.media import read_image as load  # noqa: E402
from curate.media import write_image as save  # noqa: E402

__all__ = ["Albumentations", "Scratch", "Discoloration", "Dust", "load", "save", "albumentations_module"]
