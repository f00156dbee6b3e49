"""Reading dlib's serialised DNN files (`.dat`) without dlib.

dlib writes a network from the loss layer down: the loss's own fields, then one version
marker per layer wrapper (output side first), then the input layer, then each layer's
fields in forward order (its name, e.g. "con_4", then its parameters, then the wrapper's
bookkeeping: three bools and three empty tensors). Tag and skip layers write only a
version marker, so their places come from the architecture, not from the file.

Encodings (dlib/serialize.h, checked against dlib's own output):
  int     a control byte (bit 7: negative, low 4 bits: byte count), then the magnitude,
          little-endian;
  string  an int length, then the bytes;
  bool    one ASCII byte, '0' or '1';
  float   an int mantissa, then an int exponent: mantissa * 2**exponent;
  tensor  int 2 (version), then n, k, nr, nc, then n*k*nr*nc little-endian float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DlibFormatError(ValueError):
    pass


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"file ends inside a value at byte {self.pos}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise DlibFormatError(f"bad integer control byte {control:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def string(self, max_len: int = 256) -> str:
        n = self.int()
        if not 0 <= n <= max_len:
            raise DlibFormatError(f"bad string length {n} at byte {self.pos}")
        return self._take(n).decode("ascii", errors="replace")

    def bool(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {c!r} at byte {self.pos - 1}")
        return c == b"1"

    def float(self) -> float:
        mantissa = self.int()
        return mantissa * 2.0 ** self.int()

    def tensor(self) -> np.ndarray:
        if (version := self.int()) != 2:
            raise DlibFormatError(f"tensor version {version} at byte {self.pos}, expected 2")
        shape = tuple(self.int() for _ in range(4))
        if any(s < 0 for s in shape):
            raise DlibFormatError(f"negative tensor shape {shape}")
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, ...]:
        self.int()  # version
        return tuple(self.int() for _ in range(4))

    @property
    def at_end(self) -> bool:
        return self.pos == len(self.data)


@dataclass
class Layer:
    name: str                     # dlib's layer id, e.g. "con_4", "affine_", "fc_2"
    params: np.ndarray | None = None
    fields: dict = field(default_factory=dict)


def _read_layer_fields(r: Reader, name: str) -> Layer:
    if name == "con_4":
        params = r.tensor().reshape(-1)
        keys = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        fields = {k: r.int() for k in keys}
        fields["filters"], fields["biases"] = r.alias_tensor(), r.alias_tensor()
        [r.float() for _ in range(4)]  # learning-rate and weight-decay multipliers
        return Layer(name, params, fields)
    if name == "affine_":
        params = r.tensor().reshape(-1)
        gamma, beta = r.alias_tensor(), r.alias_tensor()
        return Layer(name, params, {"gamma": gamma, "beta": beta, "mode": r.int()})
    if name in ("max_pool_2", "avg_pool_2"):
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return Layer(name, None, {k: r.int() for k in keys})
    if name in ("relu_", "add_prev_"):
        return Layer(name)
    if name == "fc_2":
        fields = {"num_outputs": r.int(), "num_inputs": r.int()}
        params = r.tensor().reshape(-1)
        fields["weights"], fields["biases"] = r.alias_tensor(), r.alias_tensor()
        fields["bias_mode"] = r.int()
        [r.float() for _ in range(4)]
        return Layer(name, params, fields)
    raise DlibFormatError(f"unsupported dlib layer {name!r}")


def _skip_wrapper_state(r: Reader) -> None:
    """add_layer's bookkeeping after each layer: 3 bools, then 3 (empty) tensors."""
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()


@dataclass
class Network:
    loss: str
    input_name: str
    input_mean: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[Layer]


def read_network(data: bytes) -> Network:
    """Parse a metric-loss network over `input_rgb_image_sized` (dlib's face ResNet)."""
    r = Reader(data)
    r.int()  # loss wrapper version
    loss = r.string()
    if loss != "loss_metric_2":
        raise DlibFormatError(f"expected a loss_metric_2 network, found {loss!r}")
    r.float(), r.float()  # margin, distance threshold
    marker = b"input_rgb_image_sized"
    start = data.find(bytes([1, len(marker)]) + marker, r.pos)
    if start < 0:
        raise DlibFormatError("no input_rgb_image_sized layer in the file")
    while r.pos < start:   # one version marker per layer wrapper, output side first
        r.int()
    if r.pos != start:
        raise DlibFormatError("version markers do not end where the input layer starts")
    input_name = r.string()
    mean = (r.float(), r.float(), r.float())
    size = (r.int(), r.int())
    layers = []
    while not r.at_end:
        layers.append(_read_layer_fields(r, r.string()))
        _skip_wrapper_state(r)
        if len(layers) == 1:
            r.int()  # the input-side wrapper also stores its sample expansion factor
    return Network(loss, input_name, mean, size, layers)


def read_network_file(path: str | Path) -> Network:
    return read_network(Path(path).read_bytes())
