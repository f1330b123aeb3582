"""Model weights <-> Flower `ArrayRecord`, byte-identical to Flower's own conversion but cheaper.

Why: a Flower `Array` holds one tensor as a serialized ``.npy`` buffer. `ArrayRecord(state_dict)`
and `ArrayRecord.to_torch_state_dict()` go through `np.save` / `np.load`, which build and *parse*
(``ast.literal_eval``) the ``.npy`` header of every array: ~1 ms per record each way for the
tabular MLP, paid per client update by the client's reply, the server's scoring of the returned
model and FedAvg — more than a light model's local training step. The format stays the same;
only the header work is cached here: one header per (dtype, shape), written exactly as `np.save`
writes it, and parsed once per distinct header with numpy's own `numpy.lib.format` reader.
Encoded `Array`s are byte-for-byte what Flower writes and decoded arrays equal `Array.numpy()`
(tests/test_arrays.py); anything off the fast path (Fortran order, object or structured dtypes,
another serialization) goes through Flower's methods unchanged.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from flwr.app import Array, ArrayRecord

NPY_STYPE = Array(np.zeros(1, dtype=np.float32)).stype  # Flower's tag for .npy-serialized arrays
_FAST_KINDS = "biuf"  # bool, signed/unsigned ints, floats: plain fixed-size dtypes
_CACHE_LIMIT = 4096  # distinct (dtype, shape)s remembered: a few per model architecture
# (dtype, shape) -> (what np.save writes before the data, `str(dtype)` as `Array` stores it)
_HEADERS: dict[tuple[np.dtype, tuple[int, ...]], tuple[bytes, str]] = {}
_LAYOUTS: dict[bytes, tuple[np.dtype, tuple[int, ...]] | None] = {}  # header -> (dtype, shape)


def _fast(arr: np.ndarray) -> bool:
    dtype = arr.dtype
    return dtype.kind in _FAST_KINDS and dtype.names is None and dtype.metadata is None


def encode(arr: np.ndarray) -> Array:
    """`Array(arr)` (`np.save`), with the ``.npy`` header written once per dtype and shape."""
    if not (_fast(arr) and arr.flags.c_contiguous):
        return Array(arr)
    key = (arr.dtype, arr.shape)
    cached = _HEADERS.get(key)
    if cached is None:
        if len(_HEADERS) >= _CACHE_LIMIT:
            _HEADERS.clear()
        data = Array(arr).data
        cached = _HEADERS[key] = (data[: len(data) - arr.nbytes], str(arr.dtype))
    header, dtype = cached
    return Array(dtype=dtype, shape=key[1], stype=NPY_STYPE, data=b"".join((header, arr.data)))


def _layout(data: bytes) -> tuple[tuple[np.dtype, tuple[int, ...]] | None, int]:
    """((dtype, shape) or None if off the fast path, data offset) of an ``.npy`` buffer."""
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        return None, 0
    major = data[6]
    if major == 1:
        offset = 10 + int.from_bytes(data[8:10], "little")
    elif major == 2 and len(data) >= 12:
        offset = 12 + int.from_bytes(data[8:12], "little")
    else:
        return None, 0
    header = data[:offset]
    if header not in _LAYOUTS:
        if len(_LAYOUTS) >= _CACHE_LIMIT:
            _LAYOUTS.clear()
        fp = io.BytesIO(header)
        np.lib.format.read_magic(fp)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        try:
            shape, fortran_order, dtype = read(fp)
        except ValueError:
            shape, fortran_order, dtype = (), True, np.dtype(object)
        fast = not fortran_order and dtype.kind in _FAST_KINDS and dtype.names is None
        _LAYOUTS[header] = (dtype, tuple(shape)) if fast else None
    return _LAYOUTS[header], offset


def decode(array: Array) -> np.ndarray:
    """`array.numpy()`: a fresh writable ndarray, header parsed once per distinct header."""
    if array.stype == NPY_STYPE:
        layout, offset = _layout(array.data)
        if layout is not None:
            dtype, shape = layout
            count = int(np.prod(shape, dtype=np.int64))
            if len(array.data) - offset == count * dtype.itemsize:
                flat = np.frombuffer(array.data, dtype=dtype, count=count, offset=offset)
                return flat.reshape(shape).copy()
    return array.numpy()


def state_record(state: Mapping[str, torch.Tensor | np.ndarray]) -> ArrayRecord:
    """`ArrayRecord(state_dict)`: the same keys, order and bytes."""
    record = ArrayRecord()
    for key, value in state.items():
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        record[key] = encode(arr)
    return record


def record_numpy(record: ArrayRecord) -> OrderedDict[str, np.ndarray]:
    """Every array of `record` decoded, in order (`ArrayRecord.to_numpy_ndarrays`, keyed)."""
    return OrderedDict((key, decode(array)) for key, array in record.items())


def record_state(record: ArrayRecord) -> OrderedDict[str, torch.Tensor]:
    """`record.to_torch_state_dict()`."""
    return torch_state(record_numpy(record))


def torch_state(arrays: Mapping[str, np.ndarray]) -> OrderedDict[str, torch.Tensor]:
    """Decoded arrays as a torch state dict (sharing memory, as `to_torch_state_dict` does)."""
    return OrderedDict((key, torch.from_numpy(arr)) for key, arr in arrays.items())


def load_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """`model.load_state_dict(state)`: the same `copy_` into every parameter and buffer, without
    `load_state_dict`'s walk through every submodule (~0.1 ms for the MLP, paid by each client
    and by the server per returned model). Taken only when `state` has exactly the model's keys
    and shapes; anything else (and every error message) is `load_state_dict`'s."""
    targets = model.state_dict(keep_vars=True)
    if targets.keys() != state.keys() or any(t.shape != state[k].shape for k, t in targets.items()):
        model.load_state_dict(state)
        return
    with torch.no_grad():
        for key, target in targets.items():
            target.copy_(state[key])
