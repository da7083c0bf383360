"""Live audio for `gemo-clap predict --stream`: a WAV stream or raw 16-bit PCM read from standard input (or a named
pipe) as it arrives, in a background thread from the start (so a producer such as `arecord` is drained while the
model loads), decoded to mono float32 samples whatever the read boundaries; and Ctrl-C / SIGTERM turned into a
clean end of the stream."""

from __future__ import annotations

import os
import queue
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

from .modeling.audio_gemo_clap import to_mono_float

RAW_SAMPLE = "<i2"  # raw input: 16-bit little-endian mono PCM (`arecord -t raw -f S16_LE`, `ffmpeg -f s16le`)
WAV_FORMATS = {  # (format tag, bits per sample) -> numpy dtype of one sample; 24-bit PCM is widened to int32
    (1, 8): "u1",
    (1, 16): "<i2",
    (1, 24): "<i4",
    (1, 32): "<i4",
    (3, 32): "<f4",
    (3, 64): "<f8",
}
UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # data sizes streaming writers put in a header they cannot rewrite
EXTENSIBLE = 0xFFFE
READ_BYTES = 1 << 16  # at most one read's worth per queue item
QUEUE_ITEMS = 256  # reads waiting to be decoded: the reader blocks (and so the producer) beyond that
POLL_SECONDS = 0.1  # how often the loop looks at the interrupt flag and the stall clock while waiting


class PcmDecoder:
    """Bytes of a WAV stream (header first; its data chunk read up to its size, or to the end of the input when the
    writer could not know it) or of raw 16-bit PCM at `raw_rate` in, mono float32 samples out, whatever the chunk
    boundaries: a sample split between two reads waits for its other bytes. `rate` is None until the header is read;
    `done` is True once a WAV data chunk is complete."""

    def __init__(self, raw_rate: int | None):
        self.raw_rate = raw_rate
        self.pending = b""
        self.received = 0
        self.rate: int | None = None
        self.dtype, self.width, self.channels = np.dtype(RAW_SAMPLE), 2, 1
        self.remaining: int | None = None  # data bytes still to come (a WAV with a known data size)
        self.done = False

    def feed(self, data: bytes) -> np.ndarray:
        """The samples `data` completes (ValueError for input that is neither a WAV stream nor, with a raw rate,
        raw PCM, or a WAV format that cannot be decoded)."""
        self.received += len(data)
        self.pending += data
        if self.rate is None and not self._header():
            return np.zeros(0, dtype=np.float32)
        block = self.width * self.channels
        usable = len(self.pending) if self.remaining is None else min(len(self.pending), self.remaining)
        usable -= usable % block
        chunk, self.pending = self.pending[:usable], self.pending[usable:]
        if self.remaining is not None:
            self.remaining -= usable
            self.done = self.remaining < block
        return self._decode(chunk)

    def finish(self) -> str | None:
        """At the end of the input: what was left over and ignored, said in words (None: nothing)."""
        if self.received == 0:
            return "no audio came on the input"
        if self.rate is None and self.raw_rate is not None:
            return f"the input ended after {self.received} byte(s), too few to tell its format: ignored"
        if self.rate is None:
            raise ValueError(f"the input ended inside its WAV header ({self.received} bytes)")
        left = len(self.pending) if self.remaining is None else min(len(self.pending), self.remaining)
        if left:
            return f"the input ended mid-sample: its last {left} byte(s) were ignored"
        return None

    def _header(self) -> bool:
        """Read the format once its bytes are here (raw PCM: at once); False while they are still coming."""
        if len(self.pending) < 4 and b"RIFF".startswith(self.pending):
            return False  # too early to tell
        if not self.pending.startswith(b"RIFF"):
            if self.raw_rate is None:
                raise ValueError(
                    f"the input is not a WAV stream (it starts with {self.pending[:4]!r}, not 'RIFF'): for raw "
                    "16-bit PCM give --sampling-rate"
                )
            self.rate = self.raw_rate
            return True
        if len(self.pending) < 12:
            return False
        if self.pending[8:12] != b"WAVE":
            raise ValueError(f"the input is a RIFF stream of {self.pending[8:12]!r}, not WAVE audio")
        position, fmt = 12, None
        while len(self.pending) >= position + 8:
            name, (size,) = self.pending[position : position + 4], struct.unpack_from("<I", self.pending, position + 4)
            body = position + 8
            if name == b"data":
                if fmt is None:
                    raise ValueError("the input's WAV header has its audio data before its format ('fmt ') chunk")
                self._format(fmt)
                self.remaining = None if size in UNKNOWN_SIZES else size
                self.pending = self.pending[body:]
                return True
            if len(self.pending) < body + size + size % 2:
                return False
            if name == b"fmt ":
                fmt = self.pending[body : body + size]
            position = body + size + size % 2  # chunks are padded to an even size
        return False

    def _format(self, chunk: bytes) -> None:
        if len(chunk) < 16:
            raise ValueError(f"the input's WAV format chunk is {len(chunk)} bytes long, shorter than 16")
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunk[:16])
        if tag == EXTENSIBLE and len(chunk) >= 26:
            tag = struct.unpack("<H", chunk[24:26])[0]
        if (tag, bits) not in WAV_FORMATS or channels < 1 or rate < 1:
            raise ValueError(
                f"the input's WAV format is not supported (format tag {tag}, {bits}-bit, {channels} channel(s), "
                f"{rate} Hz): send PCM (8, 16, 24 or 32-bit) or float WAV, e.g. ffmpeg ... -f wav -c:a pcm_s16le -"
            )
        if self.raw_rate is not None and self.raw_rate != rate:
            raise ValueError(f"--sampling-rate {self.raw_rate} but the input's WAV header says {rate} Hz")
        self.rate, self.channels, self.width, self.dtype = rate, channels, bits // 8, np.dtype(WAV_FORMATS[tag, bits])

    def _decode(self, chunk: bytes) -> np.ndarray:
        if not chunk:
            return np.zeros(0, dtype=np.float32)
        if self.width == 3:  # 24-bit: each sample into the top three bytes of an int32
            padded = np.zeros((len(chunk) // 3, 4), dtype=np.uint8)
            padded[:, 1:] = np.frombuffer(chunk, dtype=np.uint8).reshape(-1, 3)
            values = padded.view("<i4").reshape(-1)
        else:
            values = np.frombuffer(chunk, dtype=self.dtype)
        frames = values.reshape(-1, self.channels)
        channels = [to_mono_float(frames[:, channel], "the input") for channel in range(self.channels)]
        return channels[0] if self.channels == 1 else np.mean(channels, axis=0, dtype=np.float32)


class InputReader:
    """Reads `source` (a binary file with a descriptor: standard input or a named pipe) in a daemon thread into a
    bounded queue, from the moment it is made. `blocks()` gives what has arrived, as it arrives."""

    def __init__(self, source: BinaryIO):
        self.queue: queue.Queue[bytes | OSError] = queue.Queue(maxsize=QUEUE_ITEMS)
        self.ending = "end of input"
        threading.Thread(target=self._read, args=(source,), daemon=True).start()

    def _read(self, source: BinaryIO) -> None:
        # from the file descriptor: what is there, without waiting for a full buffer, and without holding the file
        # object's lock (a thread blocked there would stop the interpreter's exit while the input stays open)
        descriptor = source.fileno()
        try:
            while data := os.read(descriptor, READ_BYTES):
                self.queue.put(data)
        except (OSError, ValueError) as error:
            self.queue.put(OSError(f"read error: {error}"))
            return
        self.queue.put(b"")

    def blocks(self, stall_seconds: float, stopped: Callable[[], bool]) -> Iterator[bytes]:
        """The bytes that arrived since the last block (a backlog at once), until the end of the input, a read
        error, `stall_seconds` without input (0: wait forever), or `stopped()`; `ending` then says which."""
        last = time.monotonic()
        while not stopped():
            try:
                item = self.queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if stall_seconds and time.monotonic() - last >= stall_seconds:
                    self.ending = f"no input for {stall_seconds:g} s (stalled)"
                    return
                continue
            parts = []
            while isinstance(item, bytes) and item:
                parts.append(item)
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    item = None
            if parts:
                last = time.monotonic()
                yield b"".join(parts)
                if stopped():  # an interrupt while those were used comes first
                    break
            if isinstance(item, OSError):
                self.ending = str(item)
                return
            if item == b"":
                return
        self.ending = "interrupted"


@contextmanager
def deferred_interrupts() -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) and SIGTERM set a flag (given as a function) instead of raising, so the stream ends between
    two pushes and its open segment is flushed; a second one raises `KeyboardInterrupt`. Outside the main thread
    signals are left alone."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag.is_set
    finally:
        for number, action in previous.items():
            signal.signal(number, action)
