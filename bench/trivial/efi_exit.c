/* The physical limit for the EFI boot: an application OVMF starts like
 * ballast.efi (EFI/BOOT/BOOTX64.EFI on the ESP) whose first statement writes to
 * isa-debug-exit at 0xf4, which ends QEMU with status (0 << 1) | 1 = 1.
 * Linked with gnu-efi as tools/link-efi.sh links ballast.efi. */
#include <efi.h>

EFI_STATUS EFIAPI efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	(void)image;
	(void)systab;
	__asm__ volatile("outl %0, %1" : : "a"(0u), "Nd"((unsigned short)0xf4));
	for (;;)
		__asm__ volatile("hlt");
}
