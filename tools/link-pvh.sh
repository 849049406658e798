#!/bin/sh
# Links the PVH front end and the kernel library into a static ELF at a
# fixed address (linker.ld). The kernel objects are position independent;
# the linker resolves them here without a dynamic loader.
# Usage: link-pvh.sh OUT.elf LINKER.ld FRONT.a KERNEL.a LIBC.a LIBGCC.a
set -eu
out=$1 lds=$2 front=$3 kernel=$4 libc=$5 libgcc=$6
ld --no-warn-rwx-segments -z noexecstack -static -nostdlib -no-pie -z max-page-size=4096 -T "$lds" -o "$out" \
    --whole-archive "$front" --no-whole-archive \
    --start-group "$kernel" "$libc" "$libgcc" --end-group
"$(dirname "$0")/check-undefined.sh" "$out"
