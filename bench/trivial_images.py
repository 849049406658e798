"""The two images that mark the physical limit, built by the bench itself into
build/bench/ (not part of the meson build):

- pvh_exit.elf: a static ELF with a Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY = 18)
  whose 32-bit entry writes to isa-debug-exit (port 0xf4) at once;
- efi_exit.efi: a gnu-efi application, linked as tools/link-efi.sh links
  ballast.efi (crt0-efi-x86_64.o, elf_x86_64_efi.lds, -lgnuefi -lefi), whose
  efi_main does the same outl as its first statement.

Either makes QEMU exit with status (0 << 1) | 1 = 1. Sources: bench/trivial/.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict, List, Sequence

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SRC = BENCH / "trivial"

EFI_INC = Path("/usr/include/efi")
EFI_LDS = Path("/usr/lib/elf_x86_64_efi.lds")
EFI_CRT0 = Path("/usr/lib/crt0-efi-x86_64.o")
EFI_LIBS = (Path("/usr/lib/libgnuefi.a"), Path("/usr/lib/libefi.a"))
# The sections tools/link-efi.sh keeps in the PE image.
EFI_SECTIONS = (".text", ".sdata", ".data", ".rodata", ".dynamic", ".dynsym", ".rel",
                ".rela", ".rel.*", ".rela.*", ".reloc")

EXIT_STATUS = 1  # isa-debug-exit: guest value 0 -> (0 << 1) | 1


def _run(argv: Sequence[str]) -> None:
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({r.returncode}):\n{r.stdout}")


def _stale(out: Path, inputs: List[Path]) -> bool:
    if not out.is_file():
        return True
    t = out.stat().st_mtime
    return any(p.stat().st_mtime > t for p in inputs)


def build_pvh(outdir: Path) -> Path:
    src, lds = SRC / "pvh_exit.S", SRC / "pvh_exit.ld"
    obj, elf = outdir / "pvh_exit.o", outdir / "pvh_exit.elf"
    if _stale(elf, [src, lds, Path(__file__)]):
        _run(["gcc", "-c", "-o", obj, src])
        _run(["ld", "-z", "noexecstack", "-nostdlib", "-static", "-T", lds, "-o", elf, obj])
    return elf


def build_efi(outdir: Path) -> Path:
    for f in (EFI_INC / "efi.h", EFI_LDS, EFI_CRT0, *EFI_LIBS):
        if not f.exists():
            raise FileNotFoundError(f"{f} is missing: install Debian's gnu-efi")
    src = SRC / "efi_exit.c"
    obj, so, efi = outdir / "efi_exit.o", outdir / "efi_exit.so", outdir / "efi_exit.efi"
    if _stale(efi, [src, Path(__file__)]):
        _run(["gcc", "-c", "-O2", "-ffreestanding", "-fpic", "-fshort-wchar", "-mno-red-zone",
              "-fno-stack-protector", "-DGNU_EFI_USE_MS_ABI",
              "-isystem", EFI_INC, "-isystem", EFI_INC / "x86_64", "-o", obj, src])
        _run(["ld", "-z", "noexecstack", "-shared", "-Bsymbolic", "-nostdlib", "-znocombreloc",
              "-T", EFI_LDS, "-o", so, EFI_CRT0, obj,
              "--start-group", *EFI_LIBS, "--end-group"])
        _run([REPO / "tools" / "check-undefined.sh", so])
        sections = [a for s in EFI_SECTIONS for a in ("-j", s)]
        _run(["objcopy", *sections, "--target", "efi-app-x86_64", "--subsystem=10", so, efi])
    return efi


def build_all(outdir: Path) -> Dict[str, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    return {"pvh": build_pvh(outdir), "efi": build_efi(outdir)}


if __name__ == "__main__":
    for kind, path in build_all(REPO / "build" / "bench").items():
        print(f"{kind}: {path} ({path.stat().st_size} bytes)")
