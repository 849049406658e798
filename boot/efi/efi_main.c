/* UEFI front end (gnu-efi): gathers the memory map, the ACPI RSDP and the
 * command line, leaves boot services, switches to the kernel's own stack
 * and calls kmain. No firmware call is made after ExitBootServices. */
#include <efi.h>
#include <efilib.h>
#include <stdarg.h>
#include <stdio.h>
#include "boot/boot_info.h"
#include "kernel/arch/cpu.h"

#define KERNEL_STACK_SIZE (64 * 1024)
#define EXIT_BOOT_SERVICES_TRIES 8
/* Room for the descriptors that allocating the map buffer itself adds. */
#define MEMMAP_SLACK_DESCRIPTORS 16
#define CMDLINE_FILE L"\\ballast.cmdline"

static struct boot_info boot_info;
static uint8_t kernel_stack[KERNEL_STACK_SIZE] __attribute__((aligned(16)));

#define SAY_MAX 128

/* A line on the firmware console, before ExitBootServices: newlib's
 * snprintf, widened to UCS-2. (gnu-efi's Print would do, but it links its
 * whole formatter, device paths and GUID names, 15 KB, for two error lines.) */
static void efi_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void efi_say(const char *fmt, ...)
{
	char text[SAY_MAX];
	CHAR16 wide[SAY_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	UINTN n = 0;
	for (const char *c = text; *c && n + 2 < SAY_MAX; c++) {
		if (*c == '\n')
			wide[n++] = L'\r';
		wide[n++] = (CHAR16)(unsigned char)*c;
	}
	wide[n] = 0;
	uefi_call_wrapper(ST->ConOut->OutputString, 2, ST->ConOut, wide);
}

static uint32_t efi_to_boot_type(UINT32 efi_type)
{
	switch (efi_type) {
	case EfiConventionalMemory:   return BOOT_MEM_USABLE;
	case EfiBootServicesCode:
	case EfiBootServicesData:     return BOOT_MEM_BOOT_RECLAIMABLE;
	case EfiLoaderCode:
	case EfiLoaderData:           return BOOT_MEM_KERNEL;
	case EfiACPIReclaimMemory:    return BOOT_MEM_ACPI_RECLAIM;
	case EfiACPIMemoryNVS:        return BOOT_MEM_ACPI_NVS;
	case EfiMemoryMappedIO:
	case EfiMemoryMappedIOPortSpace: return BOOT_MEM_MMIO;
	default:                      return BOOT_MEM_RESERVED;
	}
}

/* Copies printable ASCII from UCS-2 text; returns false if the text holds
 * anything else (OVMF's own boot options carry binary data, not a command
 * line). */
static BOOLEAN ucs2_to_cmdline(const CHAR16 *s, UINTN chars)
{
	UINTN n = 0;
	for (UINTN i = 0; i < chars && s[i]; i++) {
		if (s[i] == L'\r' || s[i] == L'\n')
			break;
		if (s[i] < 0x20 || s[i] > 0x7e || n + 1 >= BOOT_CMDLINE_MAX)
			return FALSE;
		boot_info.cmdline[n++] = (char)s[i];
	}
	boot_info.cmdline[n] = '\0';
	return TRUE;
}

static void read_cmdline_file(EFI_HANDLE device)
{
	static char buf[BOOT_CMDLINE_MAX];
	EFI_FILE_HANDLE root = LibOpenRoot(device), file;
	if (!root)
		return;
	if (uefi_call_wrapper(root->Open, 5, root, &file, CMDLINE_FILE, EFI_FILE_MODE_READ, 0ULL) == EFI_SUCCESS) {
		UINTN size = sizeof(buf) - 1;
		if (uefi_call_wrapper(file->Read, 3, file, &size, buf) == EFI_SUCCESS) {
			UINTN n = 0;
			for (UINTN i = 0; i < size && buf[i] != '\n' && buf[i] != '\r'; i++)
				if (buf[i] >= 0x20 && buf[i] <= 0x7e)
					boot_info.cmdline[n++] = buf[i];
			boot_info.cmdline[n] = '\0';
		}
		uefi_call_wrapper(file->Close, 1, file);
	}
	uefi_call_wrapper(root->Close, 1, root);
}

/* The command line: the image's load options when they are text (the UEFI
 * shell, a Boot#### entry), otherwise the file \ballast.cmdline on the ESP. */
static void find_cmdline(EFI_HANDLE image)
{
	EFI_LOADED_IMAGE *li = NULL;
	if (uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&li) != EFI_SUCCESS)
		return;
	if (li->LoadOptionsSize >= sizeof(CHAR16) &&
	    ucs2_to_cmdline(li->LoadOptions, li->LoadOptionsSize / sizeof(CHAR16)) && boot_info.cmdline[0])
		return;
	boot_info.cmdline[0] = '\0';
	read_cmdline_file(li->DeviceHandle);
}

static void find_rsdp(void)
{
	EFI_GUID acpi20 = ACPI_20_TABLE_GUID; /* libefi exports only the 1.0 GUID */
	for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
		EFI_CONFIGURATION_TABLE *t = &ST->ConfigurationTable[i];
		if (CompareGuid(&t->VendorGuid, &acpi20) == 0)
			boot_info.rsdp = (uint64_t)(uintptr_t)t->VendorTable;
		else if (CompareGuid(&t->VendorGuid, &AcpiTableGuid) == 0 && !boot_info.rsdp)
			boot_info.rsdp = (uint64_t)(uintptr_t)t->VendorTable;
	}
}

/* Converts the final EFI map; runs after ExitBootServices, so pure code. */
static void fill_memory_map(const UINT8 *map, UINTN map_size, UINTN desc_size)
{
	for (UINTN off = 0; off + desc_size <= map_size; off += desc_size) {
		const EFI_MEMORY_DESCRIPTOR *d = (const void *)(map + off);
		boot_mem_add(&boot_info, d->PhysicalStart, d->NumberOfPages * EFI_PAGE_SIZE,
		             efi_to_boot_type(d->Type));
	}
	boot_mem_finalize(&boot_info);
}

static _Noreturn void enter_kernel(void)
{
	/* the firmware's stack is boot-services memory, which the kernel reuses */
	__asm__ volatile(
		"mov %0, %%rsp\n\t"
		"xor %%ebp, %%ebp\n\t"
		"call kmain"
		:
		: "r"(kernel_stack + sizeof(kernel_stack)), "D"(&boot_info)
		: "memory");
	__builtin_unreachable();
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	boot_info.entry_tsc = rdtsc();
	boot_info.front_end = "efi";
	InitializeLib(image, systab);
	find_cmdline(image);
	find_rsdp();

	UINTN map_size = 0, map_key, desc_size;
	UINT32 desc_version;
	UINT8 *map = NULL;
	EFI_STATUS st = uefi_call_wrapper(BS->GetMemoryMap, 5, &map_size, NULL, &map_key, &desc_size, &desc_version);
	if (st != EFI_BUFFER_TOO_SMALL) {
		efi_say("ballast: GetMemoryMap failed: status 0x%llx\n", (unsigned long long)st);
		return st;
	}
	UINTN buf_size = map_size + MEMMAP_SLACK_DESCRIPTORS * desc_size;
	if (uefi_call_wrapper(BS->AllocatePool, 3, EfiLoaderData, buf_size, (void **)&map) != EFI_SUCCESS) {
		efi_say("ballast: cannot allocate the memory map buffer\n");
		return EFI_OUT_OF_RESOURCES;
	}
	/* The map key goes stale whenever the firmware allocates; ExitBootServices
	 * then fails with EFI_INVALID_PARAMETER and only GetMemoryMap and
	 * ExitBootServices may be called again. */
	for (int tries = 0; tries < EXIT_BOOT_SERVICES_TRIES; tries++) {
		map_size = buf_size;
		st = uefi_call_wrapper(BS->GetMemoryMap, 5, &map_size, (EFI_MEMORY_DESCRIPTOR *)map, &map_key,
		                       &desc_size, &desc_version);
		if (st != EFI_SUCCESS)
			break;
		st = uefi_call_wrapper(BS->ExitBootServices, 2, image, map_key);
		if (st == EFI_SUCCESS) {
			fill_memory_map(map, map_size, desc_size);
			enter_kernel();
		}
	}
	/* Boot services may be half gone here; report on the serial port the
	 * kernel would have used. */
	for (const char *m = "ballast: ExitBootServices failed\r\n"; *m; m++)
		outb(0x3f8, (uint8_t)*m);
	cpu_halt_forever();
}
