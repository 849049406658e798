/* newlib's system-call layer. This newlib is built without its own
 * syscalls and with plain names (MISSING_SYSCALL_NAMES), so it calls these.
 * Output goes to the serial console and memory comes from the demand-paged
 * heap; everything else fails with a clear errno. */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "kernel/arch/arch.h"
#include "kernel/log.h"
#include "kernel/mm/heap.h"

/* newlib's declarations of these do not all match its own calls exactly,
 * so each one is declared here as newlib calls it. */
int write(int fd, const void *buf, size_t len);
int read(int fd, void *buf, size_t len);
void *sbrk(ptrdiff_t incr);
int close(int fd);
int fstat(int fd, struct stat *st);
int isatty(int fd);
off_t lseek(int fd, off_t off, int whence);
int kill(int pid, int sig);
int getpid(void);
void _exit(int status);

#define STDIN_FD  0
#define STDOUT_FD 1
#define STDERR_FD 2

int write(int fd, const void *buf, size_t len)
{
	if (fd != STDOUT_FD && fd != STDERR_FD) {
		errno = EBADF;
		return -1;
	}
	/* through the log like any line (dropped whole if the log is full) */
	kprintf("%.*s", len > INT32_MAX ? INT32_MAX : (int)len, (const char *)buf);
	return (int)len;
}

/* Console input arrives through the command interpreter, not stdin. */
int read(int fd, void *buf, size_t len)
{
	(void)fd;
	(void)buf;
	(void)len;
	errno = ENOSYS;
	return -1;
}

void *sbrk(ptrdiff_t incr) { return heap_sbrk(incr); }

int close(int fd)
{
	(void)fd;
	errno = EBADF;
	return -1;
}

int fstat(int fd, struct stat *st)
{
	if (fd < STDIN_FD || fd > STDERR_FD) {
		errno = EBADF;
		return -1;
	}
	st->st_mode = S_IFCHR; /* the console: unbuffered character device */
	return 0;
}

int isatty(int fd) { return fd >= STDIN_FD && fd <= STDERR_FD; }

off_t lseek(int fd, off_t off, int whence)
{
	(void)fd;
	(void)off;
	(void)whence;
	errno = ESPIPE;
	return -1;
}

int kill(int pid, int sig)
{
	(void)pid;
	(void)sig;
	errno = ENOSYS;
	return -1;
}

int getpid(void) { return 1; }

/* abort() and exit() end here: a kernel that exits has failed. */
void _exit(int status)
{
	klog("exit(%d) called", status);
	arch_exit(EXIT_STATUS_FAULT);
}
