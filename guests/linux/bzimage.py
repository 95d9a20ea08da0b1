"""The vmlinux ELF inside a bzImage, and the checks that it can be booted through PVH.

A bzImage carries no ELF notes, but its compressed payload is the kernel's own ELF, notes
included (Documentation/x86/boot.rst, setup header fields payload_offset/payload_length, boot
protocol >= 2.08). memvisor boots that ELF through the PVH note, so extracting it at build time
keeps liblzma out of the VMM.
"""
from __future__ import annotations

import lzma
import struct
from pathlib import Path
from typing import BinaryIO, Iterator

SETUP_SECTS = 0x1f1
HEADER_MAGIC = 0x202          # "HdrS"
VERSION = 0x206
PAYLOAD_OFFSET = 0x248
PAYLOAD_LENGTH = 0x24c
HEADER_END = 0x250
XZ_MAGIC = b"\xfd7zXZ\x00"

PT_INTERP, PT_NOTE = 3, 4
XEN_ELFNOTE_PHYS32_ENTRY = 18
CHUNK = 1 << 20


class ImageError(ValueError):
    """The file is not what it must be; the message is one line for humans."""


def xz_payload(image: bytes) -> bytes:
    """The XZ stream a bzImage's setup header points at."""
    if len(image) < HEADER_END:
        raise ImageError(f"{len(image)} bytes: too short for a bzImage setup header")
    if image[HEADER_MAGIC:HEADER_MAGIC + 4] != b"HdrS":
        raise ImageError("no 'HdrS' setup header at 0x202: not a bzImage")
    version, = struct.unpack_from("<H", image, VERSION)
    if version < 0x208:
        raise ImageError(f"boot protocol {version >> 8}.{version & 0xff:02d} has no payload fields (2.08+)")
    setup_sects = image[SETUP_SECTS] or 4      # 0 means 4, for old kernels (boot.rst)
    offset, length = struct.unpack_from("<II", image, PAYLOAD_OFFSET)
    start = (setup_sects + 1) * 512 + offset
    if start + length > len(image):
        raise ImageError(f"payload [{start:#x}, {start + length:#x}) runs past the end of the "
                         f"file ({len(image):#x} bytes): truncated")
    payload = image[start:start + length]
    if not payload.startswith(XZ_MAGIC):
        raise ImageError(f"payload at {start:#x} is not XZ (this kernel was not built with CONFIG_KERNEL_XZ)")
    return payload


def decompress_to(payload: bytes, out: Path) -> None:
    """Streams the payload into `out`: the ELF is ~66 MB, eight times the bzImage."""
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        with out.open("wb") as f:
            f.write(dec.decompress(payload, CHUNK))
            while not dec.eof and not dec.needs_input:
                f.write(dec.decompress(b"", CHUNK))
    except lzma.LZMAError as e:
        raise ImageError(f"XZ payload is corrupt: {e}") from None
    if not dec.eof:
        raise ImageError("XZ payload ends before its stream does")


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ImageError(f"ELF truncated: {size} bytes wanted at {offset:#x}")
    return data


def elf_segments(path: Path) -> tuple[int, list[tuple[int, bytes]]]:
    """The entry point and, per program header, (type, contents for notes and interpreters)."""
    with path.open("rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF":
            raise ImageError("not an ELF file")
        if ident[4] != 2 or ident[5] != 1:
            raise ImageError("not a little-endian ELF64")
        entry, phoff = struct.unpack_from("<QQ", ident, 24)
        phentsize, phnum = struct.unpack_from("<HH", ident, 54)
        if phentsize < 56 or phnum == 0:
            raise ImageError(f"ELF has no usable program headers (phentsize={phentsize} phnum={phnum})")
        segments = []
        for i in range(phnum):
            ptype, _, offset, _, _, filesz = struct.unpack_from(
                "<IIQQQQ", _read(f, phoff + i * phentsize, 56))
            body = _read(f, offset, filesz) if ptype in (PT_NOTE, PT_INTERP) else b""
            segments.append((ptype, body))
    return entry, segments


def notes(segment: bytes) -> Iterator[tuple[bytes, int, bytes]]:
    """(name, type, desc) of each note in a PT_NOTE segment (4-byte aligned, as ELF64 notes are)."""
    off = 0
    while off + 12 <= len(segment):
        namesz, descsz, ntype = struct.unpack_from("<III", segment, off)
        name_at = off + 12
        desc_at = name_at + (namesz + 3) // 4 * 4
        end = desc_at + (descsz + 3) // 4 * 4
        if end > len(segment):
            raise ImageError(f"ELF note at {off:#x} runs past its segment")
        yield segment[name_at:name_at + namesz].rstrip(b"\0"), ntype, segment[desc_at:desc_at + descsz]
        off = end


def pvh_entry(path: Path) -> int:
    """The XEN_ELFNOTE_PHYS32_ENTRY address of an extracted vmlinux."""
    _, segments = elf_segments(path)
    for ptype, body in segments:
        if ptype != PT_NOTE:
            continue
        for name, ntype, desc in notes(body):
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY and len(desc) >= 4:
                return struct.unpack_from("<I", desc)[0]
    raise ImageError("no Xen PHYS32_ENTRY note (type 18): this kernel cannot boot through PVH")


def is_static(path: Path) -> bool:
    """True for an ELF without an interpreter: it runs in an initramfs that has no libc."""
    _, segments = elf_segments(path)
    return all(ptype != PT_INTERP for ptype, _ in segments)


def extract_vmlinux(bzimage: Path, out: Path) -> int:
    """Writes the ELF to `out` (the caller renames it into place) and returns its PVH entry."""
    decompress_to(xz_payload(bzimage.read_bytes()), out)
    try:
        return pvh_entry(out)
    except ImageError as e:
        raise ImageError(f"decompressed payload: {e}") from None
