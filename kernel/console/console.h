/* The command console on COM1: one command a line, one answer a line,
 * "ok key=value ..." or "err <reason>". */
#ifndef BALLAST_CONSOLE_H
#define BALLAST_CONSOLE_H

#include <inttypes.h> /* answers format counters with PRIu64 */

#define CONSOLE_LINE_MAX 256

struct console_cmd {
	const char *name;   /* first word */
	const char *usage;  /* the arguments, for console_usage ("" for none) */
	/* argv[0] is the name. Answers with exactly one console_ok/console_err. */
	void (*run)(int argc, char **argv);
};

/* Subsystems register their commands at init (a static table each). */
void console_register(const struct console_cmd *cmds, unsigned count);
/* Starts line input from the UART's receive interrupt. */
void console_init(void);
/* Runs one command line (modified in place) and answers it. */
void console_execute(char *line);

void console_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Answers "err usage: <name> <usage>" for the command that is running. */
void console_usage(void);
void console_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
