"""Reading and writing the safetensors format by hand, with torch tensors.

A safetensors file is:

* 8 bytes: N, the length of the header, an unsigned little-endian 64-bit integer;
* N bytes: a UTF-8 JSON object mapping each tensor name to
  ``{"dtype": "F16"|"F32"|"F64", "shape": [...], "data_offsets": [begin, end]}``
  (offsets relative to the start of the data section, end exclusive), plus an
  optional ``"__metadata__"`` object of string to string;
* the data section: every tensor's bytes, row-major, little-endian, packed
  back to back with no gaps in header order.

The writer sorts tensors by name, lays them out in that order, and pads the
header with spaces to a multiple of 8 bytes, as the reference implementation
does.  Only the floating-point dtypes F16, F32 and F64 are supported.
"""

import json
import struct

import numpy as np
import torch

_DTYPES = {
    "F16": (torch.float16, np.dtype("<f2")),
    "F32": (torch.float32, np.dtype("<f4")),
    "F64": (torch.float64, np.dtype("<f8")),
}
_NAMES = {torch_dtype: name for name, (torch_dtype, _) in _DTYPES.items()}


def save_file(tensors, path, metadata=None):
    """Writes a dict of name -> torch tensor to path in the safetensors format.

    Tensors keep their dtype, which must be float16, float32 or float64.
    metadata, if given, is a dict of str -> str stored as "__metadata__".
    """
    header = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("tensor name __metadata__ is reserved")
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _NAMES:
            raise TypeError("tensor %s has unsupported dtype %s" % (name, t.dtype))
        dtype_name = _NAMES[t.dtype]
        data = t.numpy().astype(_DTYPES[dtype_name][1], copy=False).tobytes(order="C")
        header[name] = {
            "dtype": dtype_name,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for data in blobs:
            f.write(data)


def load_file(path):
    """Reads a safetensors file; returns (dict of name -> torch tensor, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("%s: header length %d runs past the end of the file" % (path, n))
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n :]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dtype_name = info["dtype"]
        if dtype_name not in _DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dtype_name))
        torch_dtype, np_dtype = _DTYPES[dtype_name]
        begin, end = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        count = 1
        for s in shape:
            count *= s
        if not 0 <= begin <= end <= len(data) or end - begin != count * np_dtype.itemsize:
            raise ValueError("%s: tensor %s has bad data_offsets %r" % (path, name, info["data_offsets"]))
        arr = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape)
        tensors[name] = torch.from_numpy(arr.astype(np_dtype.newbyteorder("="), copy=True)).to(torch_dtype)
    return tensors, metadata
