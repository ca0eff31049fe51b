"""Mouth re-shaping of one template frame to a target lip shape, on a crop around the lower
face only.

1. Warp: every lip and jaw point of lipsync.shape moves to the target shape (in the frame's
   own pose); a thin-plate spline through those moves, anchored to zero on the nose, cheeks
   and the border of the lower-face region, gives a backward map evaluated on a coarse grid,
   upsampled and applied with cv2.remap.  Closed targets close the lips, rounded ones pull
   the corners in, open ones drop the jaw.
2. Texture: the template mouth chosen for this output frame (lipsync.mouth_index) is warped
   from its own shape to the target, placed in the frame's pose, colour-matched on a ring of
   skin around the lips and blended in with a feathered mask, so the teeth and the inner
   mouth are real ones of this presenter.  Without a close candidate the warp alone is used
   and new mouth opening is filled with a dark cavity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import landmarks as L
from . import mouth_index as MI
from . import shape as S

REGION_MARGIN = 0.3   # x IOD around the jaw line: the only area the renderer changes
GRID_STEP = 8         # pixels between evaluations of the spline
PATCH_GRID_STEP = 4   # the same on the pasted mouth patch (96 px per IOD)
# points that must not move (nose, cheeks, the sides of the jaw)
FIXED = L.NOSE + L.CHEEKS + [234, 93, 132, 58, 454, 323, 361, 288, 164, 167, 393, 165, 391]
# skin points between the lips and the chin that follow the lower lip partly
CHIN_FOLLOW = {18: 0.8, 200: 0.6, 199: 0.5, 175: 0.45, 83: 0.6, 313: 0.6, 182: 0.45, 406: 0.45,
               201: 0.45, 421: 0.45}
MASK_GROW = 0.10      # x IOD the pasted mouth extends beyond the outer lips
MASK_FEATHER = 0.07   # x IOD of feathering at the pasted mouth's edge


def region_polygon(lm: np.ndarray) -> np.ndarray:
    """(K, 2) float32 polygon of the area the renderer may change for landmarks lm."""
    return L.lower_face_polygon(lm, margin=REGION_MARGIN)


def region_mask(lm: np.ndarray, shape) -> np.ndarray:
    """(H, W) bool: pixels the renderer may change."""
    return L.lower_face_mask(lm, shape, margin=REGION_MARGIN)


def single_thread_blas():
    """Context limiting BLAS to one thread.  The spline's matrices are tiny (~150x150); a
    multi-threaded OpenBLAS contending with the decoder/encoder threads made each solve
    ~100x slower.  A no-op when threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


# -- thin-plate spline --------------------------------------------------------------------

def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    """U(r) = r^2 log r, written on r^2: 0.5 r2 log r2 (0 at r = 0)."""
    return 0.5 * r2 * np.log(np.maximum(r2, 1e-20))


def tps_fit(ctrl: np.ndarray, values: np.ndarray, reg: float = 1e-3):
    """Fit a thin-plate spline f with f(ctrl_i) ~= values_i.  ctrl (n, 2), values (n, d)."""
    n = len(ctrl)
    dx = ctrl[:, 0, None] - ctrl[None, :, 0]
    dy = ctrl[:, 1, None] - ctrl[None, :, 1]
    K = _tps_kernel(dx * dx + dy * dy)  # two planes, not a reduction over a size-2 axis
    K[np.diag_indices(n)] += reg
    P = np.concatenate([np.ones((n, 1)), ctrl], axis=1)
    A = np.zeros((n + 3, n + 3))
    A[:n, :n], A[:n, n:], A[n:, :n] = K, P, P.T
    b = np.zeros((n + 3, values.shape[1]))
    b[:n] = values
    coef = np.linalg.solve(A, b)
    return ctrl, coef


def tps_eval(model, pts: np.ndarray) -> np.ndarray:
    """Evaluate a fitted spline at pts (m, 2) -> (m, d) float64.

    The (m, n) kernel matrix is built in float32, in place: it is most of a frame's work, and
    on coordinates in face units float32 moves the result by far less than a pixel.
    """
    ctrl, coef = model
    n = len(ctrl)
    p, c = pts.astype(np.float32), ctrl.astype(np.float32)
    d2 = (p * p).sum(1)[:, None] + (c * c).sum(1)[None, :] - 2.0 * (p @ c.T)
    np.maximum(d2, 1e-20, out=d2)
    k = np.log(d2)
    k *= d2
    k *= 0.5  # U = 0.5 r2 log r2, as _tps_kernel
    out = k @ coef[:n].astype(np.float32) + p @ coef[n + 1:].astype(np.float32)
    return out.astype(np.float64) + coef[n]


def dense_backward_map(dst_pts, src_pts, box, step: int = GRID_STEP, scale: float = 1.0):
    """Backward map for cv2.remap over box=(x0, y0, x1, y1): each output pixel's source.

    dst_pts, src_pts (n, 2) in the same pixel frame as box.  Returns map_x, map_y
    (h, w) float32 in box-relative source coordinates.  The spline is fitted on
    coordinates divided by `scale` (e.g. the IOD) for conditioning, evaluated every `step`
    pixels and upsampled bilinearly.
    """
    import cv2

    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    origin = np.array([x0, y0], np.float64)
    model = tps_fit((dst_pts - origin) / scale, (src_pts - dst_pts) / scale)
    # Grid sample k sits at pixel (k + 0.5) * step - 0.5, which is where cv2.resize by `step`
    # puts it, so the upsampled field is unshifted; one extra sample on each side covers the
    # crop's edges.
    nx, ny = -(-w // step) + 2, -(-h // step) + 2
    gx = (np.arange(nx) - 0.5) * step - 0.5
    gy = (np.arange(ny) - 0.5) * step - 0.5
    G = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    D = (tps_eval(model, G / scale) * scale).astype(np.float32)
    size = (nx * step, ny * step)
    dx = cv2.resize(D[:, 0].reshape(ny, nx), size, interpolation=cv2.INTER_LINEAR)[step:step + h, step:step + w]
    dy = cv2.resize(D[:, 1].reshape(ny, nx), size, interpolation=cv2.INTER_LINEAR)[step:step + h, step:step + w]
    return dx + np.arange(w, dtype=np.float32)[None, :], dy + np.arange(h, dtype=np.float32)[:, None]


def _blend(top: np.ndarray, base: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """alpha * top + (1 - alpha) * base, rounded: (h, w, 3) uint8 twice and (h, w) float32 in
    [0, 1] -> (h, w, 3) uint8, in one pass (no float copies of the images)."""
    import cv2

    return cv2.blendLinear(top, base, alpha, 1.0 - alpha)


# -- renderer -----------------------------------------------------------------------------

class Plan(NamedTuple):
    """The geometry of one frame's re-shaping (ShapeRenderer.plan), computed from landmarks and
    the target alone, so it can be made ahead of the frame's pixels in another thread."""

    box: tuple[int, int, int, int]     # x0, y0, x1, y1: the crop the renderer changes
    map_x: np.ndarray                  # (h, w) float32: the warp's backward map on the crop
    map_y: np.ndarray
    alpha: np.ndarray                  # (h, w) float32: the crop's blend weight, 0 outside
    paste: tuple | None                # (bx0, by0, bx1, by1, texture, alpha, ring): the mouth
    cavity: np.ndarray | None          # (h, w, 1) float32: where new opening is darkened


class ShapeRenderer:
    """Re-shape the mouth in template frames to target shapes.  Keeps a little state (colour
    gain) across consecutive frames for temporal stability; make one per output video.

    plan() is geometry only (thread-safe, no state); apply() does the pixels in frame order.
    """

    def __init__(self, template):
        self.t = template
        self.index = template.mouth_index
        self._gain = None
        lip = np.asarray(template.lip_colour, np.float32)
        self.cavity_colour = np.clip(lip * 0.28, 8, 90)
        w, h = MI.patch_size()
        self._patch_box = (0, 0, w, h)

    def __call__(self, frame: np.ndarray, lm: np.ndarray, target: np.ndarray,
                 entry: int = -1) -> np.ndarray:
        """frame (H, W, 3) uint8 RGB (not modified), lm (478, 2) its landmarks, target (P, 2)
        lip shape in face units, entry: the mouth index entry to paste (-1: none) -> new
        frame (H, W, 3) uint8 (a copy; identical outside the lower-face region)."""
        return self.apply(frame, self.plan(lm, target, entry, frame.shape))

    def plan(self, lm: np.ndarray, target: np.ndarray, entry: int, frame_shape) -> Plan | None:
        """The geometry for a frame of `frame_shape` (H, W, ...) with landmarks lm; None when
        the face is too small to touch."""
        import cv2

        H, W = frame_shape[:2]
        _, _, iod = L.face_axes(lm)
        if iod < 4:
            return None
        poly = region_polygon(lm)
        x0, y0 = np.floor(poly.min(axis=0)).astype(int)
        x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = int(max(x0, 0)), int(max(y0, 0)), int(min(x1, W)), int(min(y1, H))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        origin = np.array([x0, y0], np.float64)
        target = np.asarray(target, np.float64)
        src_shape = lm[S.SHAPE_POINTS].astype(np.float64)
        dst_shape = S.to_image(target, lm)
        map_x, map_y = self._warp_map(lm, src_shape, dst_shape, poly, (x0, y0, x1, y1), iod)
        h, w = y1 - y0, x1 - x0
        paste = cavity = None
        if entry >= 0 and self.index is not None:
            paste = self._paste_plan(entry, target, lm, origin, (h, w))
        else:
            cavity = self._cavity_plan(lm, dst_shape - origin, target, iod, (h, w))
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(cv2.convexHull((poly - origin).astype(np.float32))).astype(np.int32)], 255)
        k = max(3, int(0.12 * iod) | 1)
        alpha = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32) * np.float32(1 / 255)
        alpha[mask == 0] = 0.0  # never touch pixels outside the region
        return Plan((x0, y0, x1, y1), map_x, map_y, alpha, paste, cavity)

    def apply(self, frame: np.ndarray, plan: Plan | None) -> np.ndarray:
        """The pixels: the crop warped, the mouth pasted (colour gain carried across frames)
        or the cavity darkened, blended into a copy of the frame."""
        import cv2

        if plan is None:
            return frame
        x0, y0, x1, y1 = plan.box
        crop = frame[y0:y1, x0:x1]
        warped = cv2.remap(crop, plan.map_x, plan.map_y, interpolation=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        if plan.paste is not None:
            self._paste_apply(warped, plan.paste)
        elif plan.cavity is not None:
            out = warped.astype(np.float32)
            out += plan.cavity * (self.cavity_colour[None, None, :] - out)
            warped = np.clip(out, 0, 255).astype(np.uint8)
        out = frame.copy()
        out[y0:y1, x0:x1] = _blend(warped, crop, plan.alpha)
        return out

    @staticmethod
    def _warp_map(lm, src_shape, dst_shape, poly, box, iod):
        """The backward map moving the crop's lips and jaw from src_shape to dst_shape (P, 2) px."""
        x0, y0, x1, y1 = box
        lower_lip = dst_shape[S.INNER_LOWER_MID].mean(0) - src_shape[S.INNER_LOWER_MID].mean(0)
        follow_src = lm[list(CHIN_FOLLOW)].astype(np.float64)
        follow_dst = follow_src + np.array(list(CHIN_FOLLOW.values()))[:, None] * lower_lip
        fixed = lm[FIXED].astype(np.float64)
        border = poly.astype(np.float64)
        bx = np.linspace(x0, x1 - 1, 6)
        by = np.linspace(y0, y1 - 1, 6)
        frame_border = np.concatenate([
            np.stack([bx, np.full(6, y0)], 1), np.stack([bx, np.full(6, y1 - 1)], 1),
            np.stack([np.full(6, x0), by], 1), np.stack([np.full(6, x1 - 1), by], 1)])
        dst_all = np.concatenate([dst_shape, follow_dst, fixed, border, frame_border])
        src_all = np.concatenate([src_shape, follow_src, fixed, border, frame_border])
        # points outside the crop add nothing but ill-conditioning
        keep = ((dst_all[:, 0] >= x0 - 2) & (dst_all[:, 0] <= x1 + 1)
                & (dst_all[:, 1] >= y0 - 2) & (dst_all[:, 1] <= y1 + 1))
        return dense_backward_map(dst_all[keep], src_all[keep], box, scale=iod)

    def _paste_plan(self, entry, target, lm, origin, crop_hw):
        """Index entry `entry` warped from its own shape to `target` and placed on the crop:
        (bx0, by0, bx1, by1, texture, alpha, ring) or None when it lands off the crop."""
        import cv2

        idx = self.index
        src = MI.face_to_patch(idx.shapes[entry].astype(np.float64))
        dst = MI.face_to_patch(target)
        pw, ph = MI.patch_size()
        bx, by = np.linspace(0, pw - 1, 7), np.linspace(0, ph - 1, 5)
        pborder = np.concatenate([np.stack([bx, np.zeros(7)], 1), np.stack([bx, np.full(7, ph - 1)], 1),
                                  np.stack([np.zeros(5), by], 1), np.stack([np.full(5, pw - 1), by], 1)])
        # The candidate moves as a whole with its lips first (a similarity from the target's
        # lips to the candidate's: a mouth taken from a frame where the head was turned sits
        # off the nose), then the spline bends its lips onto the target's.
        lips = slice(0, len(S.OUTER) + len(S.INNER))
        M, _ = cv2.estimateAffinePartial2D(dst[lips].astype(np.float32), src[lips].astype(np.float32))
        border_src = pborder if M is None else pborder @ M[:, :2].T + M[:, 2]
        mx, my = dense_backward_map(np.concatenate([dst, pborder]), np.concatenate([src, border_src]),
                                    self._patch_box, step=PATCH_GRID_STEP, scale=MI.PATCH_PPU)
        tex = cv2.remap(idx.patches[entry], mx, my, interpolation=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        # the mask in patch space: the target's outer lips, grown and feathered; the ring of
        # skin just outside it is where the colours are matched
        m = np.zeros((ph, pw), np.uint8)
        cv2.fillPoly(m, [np.round(cv2.convexHull(dst[:len(S.OUTER)].astype(np.float32))).astype(np.int32)], 255)
        grow = max(1, int(MASK_GROW * MI.PATCH_PPU))
        kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
        m = cv2.dilate(m, kernel)
        ring = cv2.dilate(m, kernel) - m
        k = max(3, int(MASK_FEATHER * MI.PATCH_PPU) * 2 + 1)
        m = cv2.GaussianBlur(m, (k, k), 0)
        # into the crop: patch pixels -> image pixels, shifted by the crop origin; only the
        # rectangle the patch lands on is touched
        A = MI.patch_affine(lm)
        A[:, 2] -= origin
        h, w = crop_hw
        corners = np.array([[0, 0, 1], [pw, 0, 1], [0, ph, 1], [pw, ph, 1]], np.float64) @ A.T
        bx0, by0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        bx1, by1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [w, h])
        if bx1 - bx0 < 2 or by1 - by0 < 2:
            return None
        A[:, 2] -= (bx0, by0)
        size = (int(bx1 - bx0), int(by1 - by0))
        tex_c = cv2.warpAffine(tex, A, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a = cv2.warpAffine(m, A, size, flags=cv2.INTER_LINEAR, borderValue=0).astype(np.float32) * np.float32(1 / 255)
        r = cv2.warpAffine(ring, A, size, flags=cv2.INTER_NEAREST, borderValue=0) > 0
        return int(bx0), int(by0), int(bx1), int(by1), tex_c, a, r

    def _paste_apply(self, warped, paste) -> None:
        """Blend the planned mouth into the warped crop, in place, colour-matched on its ring."""
        import cv2

        bx0, by0, bx1, by1, tex_c, a, r = paste
        sub = warped[by0:by1, bx0:bx1]
        if r.sum() >= 10:
            gain = np.clip(sub[r].mean(0) / np.maximum(tex_c[r].mean(0), 1.0), 0.7, 1.4)
            self._gain = gain if self._gain is None else 0.7 * self._gain + 0.3 * gain
        if self._gain is not None:  # colour-matched: per-channel gain, rounded and saturated
            tex_c = cv2.multiply(tex_c, (*(float(x) for x in self._gain), 0.0), dtype=cv2.CV_8U)
        warped[by0:by1, bx0:bx1] = _blend(tex_c, sub, a)

    def _cavity_plan(self, lm, dst_crop, target, iod, crop_hw):
        """No template mouth fits: where the target opens wider than the frame's own lips (the
        warp stretched lip colour into the gap), the weight (h, w, 1) of a dark inner mouth."""
        import cv2

        own = float(S.opening(S.to_face(lm[None])[0]))
        target_gap = float(S.opening(target[None])[0])
        fill = np.clip((target_gap - own) / max(target_gap, 1e-6), 0.0, 1.0) if target_gap > 0.015 else 0.0
        if fill <= 0.02:
            return None
        mask = np.zeros(crop_hw, np.uint8)
        cv2.fillPoly(mask, [np.round(S.inner_polygon(dst_crop)).astype(np.int32)], 255)
        k = max(3, int(0.04 * iod) | 1)
        return cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)[..., None] / 255.0 * fill
