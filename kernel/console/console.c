#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "kernel/console/console.h"
#include "kernel/console/parse.h"
#include "kernel/console/serial.h"
#include "kernel/log.h"
#include "kernel/work.h"
#include "lib/util.h"

#define MAX_COMMAND_TABLES 16
#define ANSWER_MAX 1024

static struct { const struct console_cmd *cmds; unsigned count; } tables[MAX_COMMAND_TABLES];
static unsigned table_count;
static char line[CONSOLE_LINE_MAX];
static unsigned line_len;
static bool line_too_long;
static bool last_was_cr;
static struct work input_work;
static const struct console_cmd *running;

void console_register(const struct console_cmd *cmds, unsigned count)
{
	if (table_count < MAX_COMMAND_TABLES)
		tables[table_count++] = (typeof(tables[0])){ cmds, count };
}

/* The answer of the command that ran last, until the log has taken it:
 * an answer is never dropped, so while the log has no room for it no
 * further command runs (their bytes wait in the UART's receive ring, then
 * in the UART: the sender is held back, nothing is lost). */
static char pending[ANSWER_MAX];
static uint32_t pending_len;

static bool answer_flush(void)
{
	if (pending_len && log_answer(pending, pending_len, &input_work))
		pending_len = 0;
	return pending_len == 0;
}

static void answer(const char *prefix, const char *fmt, va_list ap)
{
	if (pending_len)
		return; /* a second answer to one command: a bug, and the first one stands */
	size_t n = strlen(prefix);
	memcpy(pending, prefix, n);
	int m = vsnprintf(pending + n, sizeof(pending) - n - 1, fmt, ap);
	if (m > 0)
		n += (size_t)m < sizeof(pending) - n - 1 ? (size_t)m : sizeof(pending) - n - 2;
	pending[n++] = '\n';
	pending_len = (uint32_t)n;
	answer_flush();
}

void console_ok(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	answer(*fmt ? "ok " : "ok", fmt, ap);
	va_end(ap);
}

void console_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	answer("err ", fmt, ap);
	va_end(ap);
}

void console_usage(void)
{
	if (running)
		console_err("usage: %s%s%s", running->name, running->usage[0] ? " " : "", running->usage);
}

static void cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char buf[ANSWER_MAX];
	size_t n = 0;
	buf[0] = '\0';
	for (unsigned t = 0; t < table_count; t++)
		for (unsigned i = 0; i < tables[t].count && n < sizeof(buf); i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "", tables[t].cmds[i].name);
	console_ok("commands=%s", buf);
}

static const struct console_cmd builtin_cmds[] = {
	{ "help", "", cmd_help },
};

void console_execute(char *text)
{
	char *argv[PARSE_MAX_ARGS];
	int argc = parse_words(text, argv);
	if (argc < 0) {
		console_err("too many words (at most %d)", PARSE_MAX_ARGS);
		return;
	}
	if (argc == 0) {
		console_err("empty command");
		return;
	}
	for (unsigned t = 0; t < table_count; t++)
		for (unsigned i = 0; i < tables[t].count; i++)
			if (strcmp(tables[t].cmds[i].name, argv[0]) == 0) {
				running = &tables[t].cmds[i];
				running->run(argc, argv);
				running = NULL;
				return;
			}
	console_err("unknown command (try help)");
}

static bool printable(int c) { return (c >= 0x20 && c < 0x7f) || c == '\t'; }

/* Assembles lines from received bytes. "\r", "\n" and "\r\n" each end a
 * line; a line longer than CONSOLE_LINE_MAX or with control bytes is
 * answered with one err and otherwise ignored. */
static void console_input(void *ctx)
{
	(void)ctx;
	static bool bad_byte;
	int c;
	while (answer_flush() && (c = serial_getc()) >= 0) {
		bool cr_lf = last_was_cr && c == '\n';
		last_was_cr = c == '\r';
		if (cr_lf)
			continue;
		if (c == '\r' || c == '\n') {
			line[line_len] = '\0';
			if (line_too_long)
				console_err("line too long (at most %d bytes)", CONSOLE_LINE_MAX - 1);
			else if (bad_byte)
				console_err("control or non-ASCII byte in line");
			else
				console_execute(line);
			line_len = 0;
			line_too_long = bad_byte = false;
			continue;
		}
		if (!printable(c))
			bad_byte = true;
		else if (line_len + 1 >= CONSOLE_LINE_MAX)
			line_too_long = true;
		else
			line[line_len++] = (char)c;
	}
}

void console_init(void)
{
	console_register(builtin_cmds, ARRAY_SIZE(builtin_cmds));
	input_work = (struct work){ .fn = console_input };
	serial_set_rx_work(&input_work); /* input starts with log_start */
}
