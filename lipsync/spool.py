"""Random access to frames already decoded, for ping-pong looping (align.template_indices).

Playing the template backwards by re-decoding is slow with long GOPs (each step back decodes
from the previous keyframe), so the frames that will be shown again are kept as they are first
decoded, in anonymous temp files.  The first SPOOL_RAW_BYTES are kept raw (cheapest on CPU: a
close-up's whole bounce fits); beyond that each frame is compressed losslessly, one intra-only
MagicYUV packet per frame (FFmpeg's own encoder, so every PyAV build has it).  On camera footage
that is under a quarter of the raw size (about 1.4 MB instead of 6.2 MB for a 1080p frame, 35 MB
per template second at 25 fps), about 10 ms to write and 5 ms to read back on 2 cores, and
bit-exact, so a frame without a face still leaves the engine untouched.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from fractions import Fraction
from typing import Final, Literal

import av
import cv2
import numpy as np

SPOOL_CODEC: Final = "magicyuv"   # lossless, intra-only: any frame decodes on its own
SPOOL_PIX_FMT: Final = "gbrp"     # planar RGB: the round trip from rgb24 is exact
SPOOL_RAW_BYTES = 256 * 2**20     # raw bytes per spool before compressing: 43 frames at 1080p, 182 at 700x700


class RawFrames:
    """Frames of one size written raw to an unlinked temp file; the same interface as
    LosslessFrames (put -> slot, get, nbytes, close)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self._size = int(np.prod(self.shape))
        self._file = tempfile.TemporaryFile(prefix="lipsync-spool-")
        self._n = 0

    @property
    def nbytes(self) -> int:
        return self._n * self._size

    def put(self, rgb: np.ndarray) -> int:
        if rgb.shape != self.shape:
            raise ValueError(f"frame {rgb.shape} in a {self.shape} spool")
        self._file.seek(self.nbytes)
        self._file.write(np.ascontiguousarray(rgb).tobytes())
        self._n += 1
        return self._n - 1

    def get(self, slot: int) -> np.ndarray:
        self._file.seek(slot * self._size)
        buf = np.empty(self.shape, np.uint8)
        self._file.readinto(buf.data.cast("B"))
        return buf

    def __len__(self) -> int:
        return self._n

    def close(self) -> None:
        self._file.close()


def _planar_gbr(rgb: np.ndarray) -> av.VideoFrame:
    """(H, W, 3) uint8 RGB -> a gbrp VideoFrame, exactly (cheaper than swscale's reformat)."""
    h, w = rgb.shape[:2]
    frame = av.VideoFrame(w, h, SPOOL_PIX_FMT)
    r, g, b = cv2.split(rgb)
    for plane, channel in zip(frame.planes, (g, b, r), strict=True):
        if plane.line_size != w:  # rows padded for alignment
            padded = np.zeros((h, plane.line_size), np.uint8)
            padded[:, :w] = channel
            channel = padded
        plane.update(channel)  # type: ignore[arg-type]  # any buffer; the stub says bytes
    return frame


class LosslessFrames:
    """Frames of one size written to an unlinked temp file as lossless packets, read in any order.

    `put(rgb)` returns a slot number; `get(slot)` gives the (H, W, 3) uint8 RGB frame back,
    bit-identical.  `nbytes` is the file's size so far.  Nothing is left on disk, even after a
    crash: the file has no name from creation.
    """

    def __init__(self, width: int, height: int, *, threads: int = 0):
        self.width, self.height = int(width), int(height)
        self._file = tempfile.TemporaryFile(prefix="lipsync-spool-")
        self._enc = self._context("w", threads)
        self._enc.width, self._enc.height = self.width, self.height
        self._enc.pix_fmt = SPOOL_PIX_FMT
        self._enc.time_base = Fraction(1, 25)  # required by the encoder; no timing is kept
        self._enc.options = {"pred": "gradient"}  # smaller than "left", faster than "median"
        self._enc.open()
        self._dec = self._context("r", threads)
        self._index: list[tuple[int, int]] = []  # slot -> (offset, length)
        self.nbytes = 0

    @staticmethod
    def _context(mode: Literal["r", "w"], threads: int):
        ctx = av.CodecContext.create(SPOOL_CODEC, mode)
        ctx.thread_type = "SLICE"  # slice threads only: a packet in, a frame out, no delay
        ctx.thread_count = max(0, int(threads))  # 0: one per core (FFmpeg's choice)
        return ctx

    def put(self, rgb: np.ndarray) -> int:
        """Write one (H, W, 3) uint8 RGB frame; returns its slot."""
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame {rgb.shape[1]}x{rgb.shape[0]} in a {self.width}x{self.height} spool")
        packets = self._enc.encode(_planar_gbr(rgb))
        if len(packets) != 1:
            raise RuntimeError(f"{SPOOL_CODEC} gave {len(packets)} packets for one frame")
        data = bytes(packets[0])
        self._file.seek(self.nbytes)
        self._file.write(data)
        self._index.append((self.nbytes, len(data)))
        self.nbytes += len(data)
        return len(self._index) - 1

    def get(self, slot: int) -> np.ndarray:
        """The frame written at `slot`: (H, W, 3) uint8 RGB."""
        offset, length = self._index[slot]
        self._file.seek(offset)
        frames = self._dec.decode(av.Packet(self._file.read(length)))
        if len(frames) != 1:
            raise RuntimeError(f"{SPOOL_CODEC} gave {len(frames)} frames for one packet")
        return frames[0].to_ndarray(format="rgb24")

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        self._file.close()


class FrameSpool:
    """Frames of a stream by index, in any order, decoding the stream only once.

    `keep` says which frames will be asked for again once the stream has moved past them:
    True (all), False (none: the frames stream), or a (n,) bool array per frame index
    (align.frames_shown_again), so audio a little longer than the template keeps only the
    frames of the bounce.  Those are written as they are first decoded: raw up to `raw_bytes`,
    losslessly compressed after.  The newest frame pulled is always at hand (a stream that ends
    early is held on it).
    """

    def __init__(self, frames: Iterator[np.ndarray], *, keep: bool | np.ndarray = True,
                 threads: int = 0, raw_bytes: int = SPOOL_RAW_BYTES):
        self._it = iter(frames)
        self._keep = keep
        self._threads = threads
        self._raw_bytes = raw_bytes
        self._raw: RawFrames | None = None
        self._packed: LosslessFrames | None = None
        self._slots: dict[int, tuple[RawFrames | LosslessFrames, int]] = {}  # index -> (store, slot)
        self._count = 0  # frames pulled from the iterator
        self._last: np.ndarray | None = None
        self._last_index = -1
        self._tail: np.ndarray | None = None  # the newest frame pulled
        self.exhausted = False

    @property
    def spooled(self) -> int:
        """Frames written to the spool so far."""
        return len(self._slots)

    @property
    def spool_bytes(self) -> int:
        """Bytes of the spool files so far."""
        return sum(s.nbytes for s in (self._raw, self._packed) if s is not None)

    @property
    def compressed(self) -> int:
        """Frames spooled compressed (past the raw budget)."""
        return len(self._packed) if self._packed is not None else 0

    def _store(self, f: np.ndarray) -> RawFrames | LosslessFrames:
        if self._raw is None:
            self._raw = RawFrames(f.shape)
        if self._raw.nbytes + f.nbytes <= self._raw_bytes:
            return self._raw
        if self._packed is None:
            self._packed = LosslessFrames(f.shape[1], f.shape[0], threads=self._threads)
        return self._packed

    def _kept(self, i: int) -> bool:
        if isinstance(self._keep, np.ndarray):
            return i < len(self._keep) and bool(self._keep[i])
        return bool(self._keep)

    def __len__(self):
        return self._count

    def _pull(self) -> bool:
        try:
            f = next(self._it)
        except StopIteration:
            self.exhausted = True
            return False
        if self._kept(self._count):
            store = self._store(f)
            self._slots[self._count] = (store, store.put(f))
        self._last, self._last_index = f, self._count
        self._tail = f
        self._count += 1
        return True

    def get(self, i: int) -> np.ndarray:
        """Frame i (0-based).  Raises IndexError past the end of the stream."""
        while i >= self._count:
            if self.exhausted or not self._pull():
                raise IndexError(i)
        if i == self._last_index and self._last is not None:
            return self._last
        if i == self._count - 1 and self._tail is not None:
            return self._tail
        if i not in self._slots:
            raise IndexError(f"frame {i} is behind the stream and was not kept")
        store, slot = self._slots[i]
        self._last, self._last_index = store.get(slot), i
        return self._last

    def close(self):
        for store in (self._raw, self._packed):
            if store is not None:
                store.close()
        self._raw = self._packed = None
        self._slots.clear()
        close = getattr(self._it, "close", None)
        if close:
            close()
