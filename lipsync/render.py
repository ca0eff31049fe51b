"""Mouth re-shaping of one template frame: landmark-driven warp of the lower face plus
inner-mouth filling, on a crop around the mouth only.

The lips' FaceMesh points are moved to the target opening/width (lower lip and chin follow
the jaw, the upper lip a little); a thin-plate spline through those moves, anchored to zero
on the border of the lower-face region, gives a backward map evaluated on a coarse grid,
upsampled and applied with cv2.remap to the crop.  Where the target mouth is more open than
the template's at that frame, the gap between the lips is filled with the template's own
most-open mouth (the "atlas"), warped to the target inner-lip contour and colour-matched;
without a usable atlas a dark cavity colour derived from the lips is used.
"""

from __future__ import annotations

import numpy as np

from . import landmarks as L

REGION_MARGIN = 0.3   # x IOD around the jaw line: the only area the renderer changes
UPPER_SHARE = 0.25    # share of an opening change taken by the upper lip (rest: jaw)
GRID_STEP = 8         # pixels between evaluations of the spline

# chin / jaw points dragged down with the lower jaw, with their share of its motion
JAW_FOLLOW = {152: 0.6, 148: 0.55, 377: 0.55, 176: 0.45, 400: 0.45, 149: 0.3, 378: 0.3,
              150: 0.15, 379: 0.15, 18: 0.85, 200: 0.75, 199: 0.68, 175: 0.62,
              83: 0.75, 313: 0.75, 182: 0.55, 406: 0.55, 201: 0.6, 421: 0.6, 208: 0.5,
              428: 0.5, 32: 0.4, 262: 0.4}
# points that must not move (nose, cheeks, upper jaw)
FIXED = L.NOSE + L.CHEEKS + [234, 93, 132, 58, 172, 454, 323, 361, 288, 397, 136, 365,
                             164, 167, 393, 165, 391]


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
    d2 = ((ctrl[:, None, :] - ctrl[None, :, :]) ** 2).sum(-1)
    K = _tps_kernel(d2) + reg * np.eye(n)
    P = np.concatenate([np.ones((n, 1)), ctrl], axis=1)
    A = np.zeros((n + 3, n + 3))
    A[:n, :n], A[:n, n:], A[n:, :n] = K, P, P.T
    b = np.zeros((n + 3, values.shape[1]))
    b[:n] = values
    coef = np.linalg.solve(A, b)
    return ctrl, coef


def tps_eval(model, pts: np.ndarray) -> np.ndarray:
    """Evaluate a fitted spline at pts (m, 2) -> (m, d)."""
    ctrl, coef = model
    n = len(ctrl)
    d2 = (pts * pts).sum(1)[:, None] + (ctrl * ctrl).sum(1)[None, :] - 2.0 * (pts @ ctrl.T)
    np.maximum(d2, 0.0, out=d2)
    return _tps_kernel(d2) @ coef[:n] + coef[n] + pts @ coef[n + 1:]


def dense_backward_map(dst_pts, src_pts, box, step: int = GRID_STEP, scale: float = 1.0):
    """Backward map for cv2.remap over box=(x0, y0, x1, y1): each output pixel's source.

    dst_pts, src_pts (n, 2) in the same pixel frame as box.  Returns map_x, map_y
    (h, w) float32 in box-relative source coordinates.  The spline is fitted on
    coordinates divided by `scale` (e.g. the IOD) for conditioning.
    """
    import cv2

    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    origin = np.array([x0, y0], np.float64)
    model = tps_fit((dst_pts - origin) / scale, (src_pts - dst_pts) / scale)
    gx = np.arange(0, w + step, step, dtype=np.float64)
    gy = np.arange(0, h + step, step, dtype=np.float64)
    G = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    D = tps_eval(model, G / scale) * scale
    dx = D[:, 0].reshape(len(gy), len(gx)).astype(np.float32)
    dy = D[:, 1].reshape(len(gy), len(gx)).astype(np.float32)
    # Upsample the coarse displacement to every pixel: grid sample k sits at pixel k*step, so
    # pixel x reads the grid at x/step (cv2.resize would align cell centres instead and shift
    # the field by up to step/2 px).
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gxs, gys = xs / step, ys / step
    dx = cv2.remap(dx, gxs, gys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    dy = cv2.remap(dy, gxs, gys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return xs + dx, ys + dy


# -- target shape -------------------------------------------------------------------------

def target_points(lm: np.ndarray, opening: float, width_abs: float) -> tuple[np.ndarray, np.ndarray]:
    """Move the mouth landmarks of lm (478, 2) to a target inner-lip opening (/ IOD) and mouth
    width (/ IOD).  Returns (idx, dst) — landmark indices (n,) and their target positions
    (n, 2) — covering the lips, the chin points that follow the jaw and fixed anchors."""
    u, v, iod = L.face_axes(lm)
    up = lm[L.LIPS_INNER_UPPER]
    lo = lm[L.LIPS_INNER_LOWER]
    c = (lm[61] + lm[291]) / 2
    gaps = np.maximum(((lo - up) @ v), 0.0)
    mid = (up + lo) / 2
    half_w = max(abs(float((lm[308] - lm[78]) @ u)) / 2, 1.0)
    x = np.clip(((mid - c) @ u) / half_w, -1, 1)
    default_profile = np.sqrt(np.maximum(0.0, 1 - x ** 2)) ** 0.7
    g_c = float(gaps[5])
    # keep the template's own lip shape when it is clearly open, else a rounded profile
    k = np.clip((g_c / iod - 0.03) / 0.05, 0.0, 1.0)
    own = gaps / max(g_c, 1e-6)
    profile = k * np.clip(own, 0, 1.5) + (1 - k) * default_profile
    profile[0] = profile[-1] = 0.0
    target_gap = max(opening, 0.0) * iod
    # closed lips still meet along a line: keep a sliver so the spline stays well posed
    new_gaps = np.maximum(target_gap * profile, 0.6)
    new_gaps[0] = new_gaps[-1] = gaps[0]
    delta = new_gaps - gaps
    delta[0] = delta[-1] = 0.0

    s = float(np.clip(width_abs / max(abs(float((lm[291] - lm[61]) @ u)) / iod, 1e-6), 0.82, 1.22))

    def widen(p):
        return c + ((p - c) @ u)[..., None] * s * u + ((p - c) @ v)[..., None] * v

    idx, dst = [], []
    for k_, (iu, il, ou, ol) in enumerate(zip(L.LIPS_INNER_UPPER, L.LIPS_INNER_LOWER,
                                              L.LIPS_OUTER_UPPER, L.LIPS_OUTER_LOWER)):
        du = -UPPER_SHARE * delta[k_] * v
        dl = (1 - UPPER_SHARE) * delta[k_] * v
        if k_ in (0, 10):  # corners: shared by both contours, move only with the width
            for i in {iu, ou}:
                idx.append(i)
                dst.append(widen(lm[i]))
            continue
        for i, d in ((iu, du), (ou, du), (il, dl), (ol, dl)):
            idx.append(i)
            dst.append(widen(lm[i]) + d)
    jaw_delta = (1 - UPPER_SHARE) * delta[5]
    for i, share in JAW_FOLLOW.items():
        idx.append(i)
        dst.append(lm[i] + share * jaw_delta * v)
    for i in FIXED:
        idx.append(i)
        dst.append(lm[i])
    return np.array(idx), np.array(dst, np.float64)


# -- renderer -----------------------------------------------------------------------------

class MouthRenderer:
    """Re-shape the mouth in template frames.  Keeps a little state (colour gain) across
    consecutive frames for temporal stability; make one per output video."""

    def __init__(self, template):
        self.t = template
        self.atlas = template.atlas if (template.atlas is not None
                                        and template.atlas.opening >= 0.08) else None
        self._gain = None
        if self.atlas is not None:
            self._atlas_mean = self._ring_mean(self.atlas.image, self.atlas.inner)
        lip = np.asarray(template.lip_colour, np.float32)
        self.cavity_colour = np.clip(lip * 0.28, 8, 90)

    @staticmethod
    def _ring_mean(img, inner):
        """Mean colour (3,) of the lips/skin around an inner contour: a stable colour reference."""
        import cv2

        mask = np.zeros(img.shape[:2], np.uint8)
        hull = cv2.convexHull(np.round(inner).astype(np.int32))
        cv2.fillPoly(mask, [hull], 1)
        big = cv2.dilate(mask, np.ones((15, 15), np.uint8))
        ring = (big > 0) & (mask == 0)
        if ring.sum() < 10:
            return img.reshape(-1, 3).mean(0).astype(np.float32)
        return img[ring].mean(0).astype(np.float32)

    def __call__(self, frame: np.ndarray, lm: np.ndarray, opening: float,
                 width_abs: float) -> np.ndarray:
        """frame (H, W, 3) uint8 RGB (not modified), lm (478, 2) its landmarks, target opening
        and width (/ IOD) -> new frame (H, W, 3) uint8 (a copy; identical outside the
        lower-face region)."""
        import cv2

        H, W = frame.shape[:2]
        u, v, iod = L.face_axes(lm)
        if iod < 4:
            return frame
        poly = region_polygon(lm)
        x0, y0 = np.floor(poly.min(axis=0)).astype(int)
        x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return frame
        origin = np.array([x0, y0], np.float64)

        idx, dst = target_points(lm, opening, width_abs)
        src = lm[idx].astype(np.float64)
        # zero displacement along the region border and the crop border
        border = poly.astype(np.float64)
        bx = np.linspace(x0, x1 - 1, 6)
        by = np.linspace(y0, y1 - 1, 6)
        frame_border = np.concatenate([
            np.stack([bx, np.full(6, y0)], 1), np.stack([bx, np.full(6, y1 - 1)], 1),
            np.stack([np.full(6, x0), by], 1), np.stack([np.full(6, x1 - 1), by], 1)])
        anchors = np.concatenate([border, frame_border])
        dst_all = np.concatenate([dst, anchors])
        src_all = np.concatenate([src, anchors])
        # points outside the crop add nothing but ill-conditioning
        keep = ((dst_all[:, 0] >= x0 - 2) & (dst_all[:, 0] <= x1 + 1)
                & (dst_all[:, 1] >= y0 - 2) & (dst_all[:, 1] <= y1 + 1))
        map_x, map_y = dense_backward_map(dst_all[keep], src_all[keep], (x0, y0, x1, y1),
                                          scale=iod)
        crop = frame[y0:y1, x0:x1]
        warped = cv2.remap(crop, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)

        # inner mouth: where the target opening exceeds what the template shows
        inner_dst = np.concatenate([dst[[list(idx).index(i) for i in L.LIPS_INNER_UPPER]],
                                    dst[[list(idx).index(i) for i in L.LIPS_INNER_LOWER]]])
        g_src = float(self.t_gap(lm) / iod)
        fill = np.clip((opening - g_src) / max(opening, 1e-6), 0.0, 1.0) if opening > 0.015 else 0.0
        if fill > 0.02:
            warped = self._fill_cavity(warped, crop, inner_dst - origin, fill, iod)

        # feathered paste: the warp is already ~0 at the region border; feathering hides
        # the remaining sub-pixel differences
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round(cv2.convexHull((poly - origin).astype(np.float32))).astype(np.int32)], 255)
        k = max(3, int(0.12 * iod) | 1)
        alpha = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)[..., None] / 255.0
        alpha *= (mask[..., None] > 0)  # never touch pixels outside the region
        out = frame.copy()
        blended = crop.astype(np.float32) + alpha * (warped.astype(np.float32) - crop)
        out[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out

    @staticmethod
    def t_gap(lm):
        _, v, _ = L.face_axes(lm)
        return max(float((lm[14] - lm[13]) @ v), 0.0)

    def _fill_cavity(self, warped, crop, inner, fill, iod):
        """Blend a mouth interior into `warped` inside the target inner contour (22, 2),
        crop-relative.  fill in [0, 1]: how much of the gap is new (not in the template)."""
        import cv2

        h, w = warped.shape[:2]
        lo = np.floor(inner.min(axis=0)).astype(int) - 3
        hi = np.ceil(inner.max(axis=0)).astype(int) + 4
        bx0, by0 = max(lo[0], 0), max(lo[1], 0)
        bx1, by1 = min(hi[0], w), min(hi[1], h)
        if bx1 - bx0 < 3 or by1 - by0 < 3:
            return warped
        pts = inner - [bx0, by0]
        mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
        if mask.max() == 0:
            return warped
        k = max(3, int(0.04 * iod) | 1)
        a = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)[..., None] / 255.0 * fill
        region = warped[by0:by1, bx0:bx1].astype(np.float32)
        if self.atlas is not None:
            src = self.atlas.inner.astype(np.float64)
            mx, my = dense_backward_map(pts.astype(np.float64), src,
                                        (0, 0, bx1 - bx0, by1 - by0), step=4, scale=iod)
            tex = cv2.remap(self.atlas.image, mx, my, interpolation=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            # match the atlas frame's lighting to this frame's, smoothly over time
            cur = self._ring_mean(crop, inner)
            gain = np.clip(cur / np.maximum(self._atlas_mean, 1.0), 0.6, 1.6)
            self._gain = gain if self._gain is None else 0.8 * self._gain + 0.2 * gain
            tex *= self._gain
        else:
            # no open mouth anywhere in the template: a dark cavity, darker in the middle
            yy = np.linspace(-1, 1, by1 - by0)[:, None, None]
            tex = self.cavity_colour[None, None, :] * (0.75 + 0.25 * np.abs(yy))
            tex = np.broadcast_to(tex, region.shape)
        warped = warped.copy()
        warped[by0:by1, bx0:bx1] = np.clip(region + a * (tex - region), 0, 255).astype(np.uint8)
        return warped
