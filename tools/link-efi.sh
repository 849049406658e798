#!/bin/sh
# Links the EFI front end and the kernel library into a shared object with
# gnu-efi's crt0 and linker script, checks that nothing is left undefined
# (an undefined symbol in a PE image is a crash at first call), and converts
# it to a PE32+ EFI application.
# libefi comes before libc: its init.o (InitializeLib) also defines memset
# and memcpy, so libc's must not have been pulled in already.
# Usage: link-efi.sh OUT.efi OUT.so LDS CRT0 FRONT.a KERNEL.a LIBC.a LIBGCC.a
set -eu
efi=$1 so=$2 lds=$3 crt0=$4 front=$5 kernel=$6 libc=$7 libgcc=$8
ld -z noexecstack -shared -Bsymbolic -nostdlib -znocombreloc --exclude-libs ALL --gc-sections -T "$lds" -o "$so" "$crt0" \
    --whole-archive "$front" --no-whole-archive \
    --start-group /usr/lib/libgnuefi.a /usr/lib/libefi.a "$kernel" "$libc" "$libgcc" --end-group
"$(dirname "$0")/check-undefined.sh" "$so"
# .bss (boot/efi/efi.lds) becomes a section with no raw data: the loader zero-fills it
objcopy -j .text -j .sdata -j .data -j .rodata -j .dynamic -j .dynsym -j .rel -j .rela \
    -j '.rel.*' -j '.rela.*' -j .reloc -j .bss --target efi-app-x86_64 --subsystem=10 "$so" "$efi"
