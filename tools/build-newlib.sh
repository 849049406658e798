#!/bin/sh
# Builds newlib for the freestanding x86_64 kernel from Debian's newlib-source
# tarball, once per build directory (meson runs this as a custom target).
# Usage: build-newlib.sh TARBALL WORKDIR OUTDIR
# Leaves OUTDIR/libc.a and OUTDIR/include/.
set -eu
mkdir -p "$2" "$3"
# absolute paths: the build below changes directory
tarball=$(realpath "$1")
work=$(realpath "$2")
out=$(realpath "$3")

# The same code-generation flags as the kernel: newlib's objects are linked
# into both the PE/COFF and the ELF image, and run with interrupts that may
# arrive at any instruction (no red zone).
cflags="-ffreestanding -fpie -mno-red-zone -fno-stack-protector"
# Optimised for size (CFLAGS_FOR_TARGET, which newlib's build puts after CC's
# flags): nothing of newlib's is on a path that is timed, and -Os keeps
# ballast.efi under 160 KB (-O2: 7.5 KB more).

rm -rf "$work"
mkdir -p "$work/src" "$work/build"
tar -xJf "$tarball" -C "$work/src"
src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
cd "$work/build"
# --disable-newlib-supplied-syscalls: lib/syscalls.c is the system-call layer.
# nano formatted I/O and nano malloc keep the image small; no float I/O keeps
# printf from pulling in the soft-float formatting code.
"$src/configure" --target=x86_64-elf --prefix="$work/prefix" \
    --disable-multilib --disable-newlib-supplied-syscalls \
    --enable-newlib-nano-formatted-io --disable-newlib-io-float \
    --enable-newlib-nano-malloc \
    CC_FOR_TARGET="gcc $cflags" CFLAGS_FOR_TARGET="-Os -g" AR_FOR_TARGET=ar RANLIB_FOR_TARGET=ranlib \
    AS_FOR_TARGET=as LD_FOR_TARGET=ld NM_FOR_TARGET=nm >"$work/configure.log" 2>&1 \
    || { tail -n 30 "$work/configure.log"; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log"; exit 1; }
make install >"$work/install.log" 2>&1 || { tail -n 30 "$work/install.log"; exit 1; }
rm -rf "$out/include"
mkdir -p "$out"
cp "$work/prefix/x86_64-elf/lib/libc.a" "$out/libc.a"
cp -r "$work/prefix/x86_64-elf/include" "$out/include"
touch "$out/newlib-stamp.h"
