"""Realistic surface defects for inspection data: scratches, discoloration, dust.

Each defect draws its geometry in `sample` (sizes relative to the image, so any image size works), renders a soft
mask in `apply_params`, changes only the pixels under that mask, and leaves the mask in the call's context:
`context["masks"]` (one entry per defect) and `context["defect_mask"]` (their union), for reports and for
segmentation labels.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from augment.core import Param, Transform, uniform

SUPERSAMPLE = 4  # strokes are drawn 4x larger and box-filtered down: antialiased edges without a blur


class _Window:
    """The part of the image a defect can touch: integer box [y0:y1, x0:x1] around its geometry plus a margin,
    clipped to the image. Rendering and blending happen only there."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], margin: float, height: int, width: int):
        self.x0 = max(0, int(np.floor(min(xs) - margin)))
        self.y0 = max(0, int(np.floor(min(ys) - margin)))
        self.x1 = min(width, int(np.ceil(max(xs) + margin)) + 1)
        self.y1 = min(height, int(np.ceil(max(ys) + margin)) + 1)
        self.shape = (height, width)

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    def canvas(self):
        """A supersampled drawing surface for the window and a function mapping image coords onto it."""
        from PIL import Image, ImageDraw

        img = Image.new("L", ((self.x1 - self.x0) * SUPERSAMPLE, (self.y1 - self.y0) * SUPERSAMPLE), 0)
        return img, ImageDraw.Draw(img), lambda x, y: ((x - self.x0) * SUPERSAMPLE, (y - self.y0) * SUPERSAMPLE)

    def alpha(self, canvas, blur_px: float = 0.0) -> np.ndarray:
        """Full-size alpha (0..1) from the window's canvas: box-filtered down, optionally blurred."""
        from PIL import Image, ImageFilter

        small = canvas.resize((self.x1 - self.x0, self.y1 - self.y0), Image.Resampling.BOX)
        if blur_px > 0:
            small = small.filter(ImageFilter.GaussianBlur(blur_px))
        full = np.zeros(self.shape, np.float32)
        full[self.y0:self.y1, self.x0:self.x1] = np.asarray(small, dtype=np.float32) / 255.0
        return full


def _record_mask(context, name: str, alpha: np.ndarray) -> int:
    mask = alpha > 0  # every pixel the defect may change; `alpha` says how strongly
    context.setdefault("masks", []).append({"transform": name, "mask": mask, "alpha": alpha})
    union = context.get("defect_mask")
    context["defect_mask"] = mask if union is None or union.shape != mask.shape else (union | mask)
    return int(mask.sum())


def _bounds(mask: np.ndarray) -> tuple[slice, slice] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _blend(image: np.ndarray, alpha: np.ndarray, target: float) -> np.ndarray:
    """image * (1 - alpha) + target * alpha on the colour channels, computed only where alpha > 0 (elsewhere
    the output is the input, byte for byte)."""
    out = image.copy()
    box = _bounds(alpha > 0)
    if box is None:
        return out
    region = out[box]
    a = alpha[box]
    colour = region[..., :3] if image.ndim == 3 else region
    weight = a[..., None] if image.ndim == 3 else a
    mixed = np.clip(np.rint(colour * (1.0 - weight) + np.float32(target) * weight), 0, 255).astype(np.uint8)
    touched = a > 0
    colour[touched] = mixed[touched]
    return out


class Scratch(Transform):
    """Thin curved strokes (quadratic Bezier) lighter or darker than the surface: `count` strokes of `width_px`,
    `length` (fraction of the image diagonal) and `curvature` (bend as a fraction of the length), drawn at
    `strength` (0..1) and softened by `blur_px`."""

    media = "image"
    params = {"count": Param.range(1, 100, integer=True), "width_px": Param.range(0.5, 100.0),
              "length": Param.range(0.01, 2.0), "curvature": Param.range(0.0, 1.0),
              "strength": Param.range(0.0, 1.0), "lighter_p": Param.number(0.0, 1.0),
              "blur_px": Param.range(0.0, 20.0)}

    def __init__(self, count: int | Sequence[int] = (1, 2), width_px: float | Sequence[float] = (1.0, 2.5),
                 length: float | Sequence[float] = (0.3, 0.8), curvature: float | Sequence[float] = (0.0, 0.25),
                 strength: float | Sequence[float] = (0.5, 0.85), lighter_p: float = 0.6,
                 blur_px: float | Sequence[float] = (0.0, 0.8), **kwargs: Any):
        super().__init__(count=count, width_px=width_px, length=length, curvature=curvature, strength=strength,
                         lighter_p=lighter_p, blur_px=blur_px, **kwargs)

    def sample(self, rng, data, context):
        height, width = data.shape[:2]
        diagonal = float(np.hypot(height, width))
        c = self.config
        strokes = []
        for _ in range(int(rng.integers(c["count"][0], c["count"][1] + 1))):
            length = uniform(rng, c["length"]) * diagonal
            angle = float(rng.uniform(0, np.pi))
            cx, cy = float(rng.uniform(0, width)), float(rng.uniform(0, height))
            dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
            bend = uniform(rng, c["curvature"]) * length * float(rng.choice([-1.0, 1.0]))
            strokes.append({"start": [cx - dx, cy - dy], "end": [cx + dx, cy + dy],
                            "control": [cx - np.sin(angle) * bend, cy + np.cos(angle) * bend],
                            "width_px": uniform(rng, c["width_px"])})
        return {"strokes": strokes, "lighter": bool(rng.random() < c["lighter_p"]),
                "strength": uniform(rng, c["strength"]), "blur_px": uniform(rng, c["blur_px"])}

    def apply_params(self, data, params, context):
        height, width = data.shape[:2]
        t = np.linspace(0.0, 1.0, 32)[:, None]
        curves = []
        for stroke in params["strokes"]:
            p0, p1, p2 = (np.asarray(stroke[k], dtype=np.float64) for k in ("start", "control", "end"))
            curves.append(((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2, stroke["width_px"]))
        points = np.concatenate([c for c, _ in curves])
        margin = max(w for _, w in curves) + 3 * params["blur_px"] + 2
        window = _Window(points[:, 0], points[:, 1], margin, height, width)
        alpha = np.zeros((height, width), np.float32)
        if not window.empty:
            canvas, draw, to_canvas = window.canvas()
            for curve, stroke_width in curves:
                draw.line([to_canvas(x, y) for x, y in curve.tolist()], fill=255,
                          width=max(1, int(round(stroke_width * SUPERSAMPLE))))
            alpha = window.alpha(canvas, params["blur_px"]) * params["strength"]
        params["mask_pixels"] = _record_mask(context, "Scratch", alpha)
        return _blend(data, alpha, 255.0 if params["lighter"] else 0.0)


class Discoloration(Transform):
    """A soft-edged elliptical blotch that shifts hue (degrees), saturation and brightness (relative changes) of
    the surface under it; `radius` is a fraction of the shorter image side, `softness` the edge blur relative to
    the radius. Grayscale images get the brightness change only."""

    media = "image"
    params = {"radius": Param.range(0.01, 1.0), "hue_shift": Param.range(-180.0, 180.0),
              "saturation": Param.range(-1.0, 1.0), "brightness": Param.range(-1.0, 1.0),
              "softness": Param.range(0.0, 2.0)}

    def __init__(self, radius: float | Sequence[float] = (0.08, 0.25), hue_shift: float | Sequence[float] = (-20, 20),
                 saturation: float | Sequence[float] = (-0.4, 0.4), brightness: float | Sequence[float] = (-0.3, 0.1),
                 softness: float | Sequence[float] = (0.2, 0.5), **kwargs: Any):
        super().__init__(radius=radius, hue_shift=hue_shift, saturation=saturation, brightness=brightness,
                         softness=softness, **kwargs)

    def sample(self, rng, data, context):
        height, width = data.shape[:2]
        c = self.config
        radius = uniform(rng, c["radius"]) * min(height, width)
        return {"center": [float(rng.uniform(0.15, 0.85) * width), float(rng.uniform(0.15, 0.85) * height)],
                "radii": [radius, radius * float(rng.uniform(0.55, 1.0))], "angle_deg": float(rng.uniform(0, 180)),
                "hue_shift": uniform(rng, c["hue_shift"]), "saturation": uniform(rng, c["saturation"]),
                "brightness": uniform(rng, c["brightness"]), "softness": uniform(rng, c["softness"])}

    def apply_params(self, data, params, context):
        from PIL import Image, ImageDraw

        height, width = data.shape[:2]
        rx, ry = params["radii"]
        cx, cy = params["center"]
        blur = params["softness"] * max(rx, ry) / 2
        reach = max(rx, ry) + 3 * blur + 2
        window = _Window([cx - reach, cx + reach], [cy - reach, cy + reach], 0, height, width)
        size = int(np.ceil(2 * max(rx, ry))) + 2
        blob = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
        ImageDraw.Draw(blob).ellipse([(size / 2 - rx) * SUPERSAMPLE, (size / 2 - ry) * SUPERSAMPLE,
                                      (size / 2 + rx) * SUPERSAMPLE, (size / 2 + ry) * SUPERSAMPLE], fill=255)
        blob = blob.rotate(params["angle_deg"], resample=Image.Resampling.BILINEAR)
        canvas, _, to_canvas = window.canvas()
        left, top = to_canvas(cx - size / 2, cy - size / 2)
        canvas.paste(blob, (int(round(left)), int(round(top))))
        alpha = window.alpha(canvas, blur)
        params["mask_pixels"] = _record_mask(context, "Discoloration", alpha)
        return _shift_colour(data, alpha, params)


def _shift_colour(image: np.ndarray, alpha: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    out = image.copy()
    box = _bounds(alpha > 0)
    if box is None:
        return out
    a = alpha[box]
    touched = a > 0
    region = out[box]
    if image.ndim == 2 or image.shape[2] == 1:
        plane = region.reshape(a.shape)
        shifted = np.clip(np.rint(plane * (1.0 + params["brightness"] * a)), 0, 255).astype(np.uint8)
        plane[touched] = shifted[touched]
        return out
    import cv2

    rgb = region[..., :3].astype(np.float32) / 255.0
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + params["hue_shift"] * a) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] * (1.0 + params["saturation"] * a), 0.0, 1.0)
    hsv[..., 2] = np.clip(hsv[..., 2] * (1.0 + params["brightness"] * a), 0.0, 1.0)
    shifted = np.clip(np.rint(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0), 0, 255).astype(np.uint8)
    region[..., :3][touched] = shifted[touched]
    return out


class Dust(Transform):
    """Small dark specks: `count` soft discs of `radius_px`, each darkening the surface by a `darkness` fraction."""

    media = "image"
    params = {"count": Param.range(1, 10_000, integer=True), "radius_px": Param.range(0.25, 50.0),
              "darkness": Param.range(0.0, 1.0)}

    def __init__(self, count: int | Sequence[int] = (5, 30), radius_px: float | Sequence[float] = (0.5, 2.0),
                 darkness: float | Sequence[float] = (0.3, 0.8), **kwargs: Any):
        super().__init__(count=count, radius_px=radius_px, darkness=darkness, **kwargs)

    def sample(self, rng, data, context):
        height, width = data.shape[:2]
        c = self.config
        n = int(rng.integers(c["count"][0], c["count"][1] + 1))
        specks = [{"center": [float(rng.uniform(0, width)), float(rng.uniform(0, height))],
                   "radius_px": uniform(rng, c["radius_px"]), "darkness": uniform(rng, c["darkness"])}
                  for _ in range(n)]
        return {"specks": specks}

    def apply_params(self, data, params, context):
        height, width = data.shape[:2]
        xs = [s["center"][0] for s in params["specks"]]
        ys = [s["center"][1] for s in params["specks"]]
        window = _Window(xs, ys, max(s["radius_px"] for s in params["specks"]) + 2, height, width)
        alpha = np.zeros((height, width), np.float32)
        if not window.empty:
            canvas, draw, to_canvas = window.canvas()
            for speck in params["specks"]:  # darkness is the fill level; a later speck covers an earlier one
                (x, y), r = speck["center"], speck["radius_px"]
                draw.ellipse([*to_canvas(x - r, y - r), *to_canvas(x + r, y + r)],
                             fill=int(round(255 * speck["darkness"])))
            alpha = window.alpha(canvas)
        params["mask_pixels"] = _record_mask(context, "Dust", alpha)
        return _blend(data, alpha, 0.0)
