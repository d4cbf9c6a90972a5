#!/usr/bin/env python3
"""gen_gguf_corpus.py — writes the small handmade GGUF seeds in fuzz/corpus/gguf/.

Seeds named ok-*.gguf are valid files the reader must open; bad-*.gguf each carry one
defect and must fail with a format error (the replay test, tests/gguf/test_gguf_corpus.c,
checks both). Each stays under 4 KB so the fuzzer mutates headers, not bulk data.
Layout per the GGUF spec (little-endian): magic, u32 version, u64 n_tensors, u64 n_kv,
key/values, tensor infos, padding to general.alignment (default 32), tensor data.
Usage: fuzz/gen_gguf_corpus.py [OUT_DIR]
"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
          BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}
T_F32, T_F16, T_Q4_0, T_Q8_0, T_Q4_K = 0, 1, 2, 8, 12


def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def val(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(val(et, i) for i in items)
    return struct.pack(SCALAR[t], v)


def kv(key, t, v):
    return s(key) + struct.pack("<I", t) + val(t, v)


def gguf(kvs, tensors=(), version=3, alignment=32, n_kv=None, n_tensors=None):
    """tensors: (name, dims, ggml_type, data bytes); offsets assigned and padded."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                len(kvs) if n_kv is None else n_kv)
    out += b"".join(kvs)
    off, blobs = 0, []
    for name, dims, typ, data in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", typ, off)
        pad = -len(data) % alignment
        blobs.append(data + b"\0" * pad)
        off += len(data) + pad
    if tensors:
        out += b"\0" * (-len(out) % alignment)
        out += b"".join(blobs)
    return out


def f32s(*xs):
    return struct.pack("<%df" % len(xs), *xs)


ARCH = kv("general.architecture", STR, "llama")

SEEDS = {
    "ok-empty": gguf([]),
    "ok-v2": gguf([ARCH], version=2),
    "ok-scalars": gguf([kv("u8", U8, 255), kv("i8", I8, -1), kv("u16", U16, 65535), kv("i16", I16, -2),
                        kv("u32", U32, 7), kv("i32", I32, -3), kv("f32", F32, 0.5), kv("bool", BOOL, 1),
                        kv("str", STR, "h\u00e9llo"), kv("u64", U64, 2**64 - 1), kv("i64", I64, -2**63),
                        kv("f64", F64, 0.25)]),
    "ok-arrays": gguf([kv("a.i32", ARR, (I32, [1, -2, 3])), kv("a.empty", ARR, (F32, [])),
                       kv("a.str", ARR, (STR, ["<s>", "", "a\0b"])),
                       kv("a.nested", ARR, (ARR, [(U16, [1, 2]), (STR, ["x"]), (ARR, [(BOOL, [0, 1])])]))]),
    "ok-vocab": gguf([ARCH, kv("tokenizer.ggml.model", STR, "llama"),
                      kv("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>", "\u2581a", "b"])),
                      kv("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0, -1.0, -2.0])),
                      kv("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 1, 1])),
                      kv("tokenizer.ggml.bos_token_id", U32, 1), kv("tokenizer.ggml.add_bos_token", BOOL, 1)]),
    "ok-tensor-f32": gguf([ARCH], [("w", [4, 2], T_F32, f32s(*range(8)))]),
    "ok-tensors-mixed": gguf([ARCH, kv("general.alignment", U32, 64)],
                             [("a", [3], T_F32, f32s(1, 2, 3)),
                              ("q", [32, 2], T_Q4_0, bytes(range(36))),
                              ("h", [2, 2, 2, 2], T_F16, bytes(32)),
                              ("k", [256], T_Q4_K, bytes(144)),
                              ("z", [0, 4], T_Q8_0, b"")], alignment=64),
    "bad-magic": b"GGML" + gguf([ARCH])[4:],
    "bad-version1": gguf([ARCH], version=1),
    "bad-truncated": gguf([ARCH], [("w", [4, 2], T_F32, f32s(*range(8)))])[:-5],
    "bad-dup-key": gguf([ARCH, ARCH]),
    "bad-alignment": gguf([kv("general.alignment", U32, 48)]),
    "bad-nkv-huge": gguf([ARCH], n_kv=2**62),
    "bad-array-huge": gguf([s("x") + struct.pack("<IIQ", ARR, U32, 2**61)]),
    "bad-tensor-type": gguf([], [("w", [8], 99, bytes(32))]),
    "bad-block": gguf([], [("q", [31], T_Q4_0, bytes(32))]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "gguf")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        assert len(data) < 4096, name
        with open(os.path.join(out, name + ".gguf"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
