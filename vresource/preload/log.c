/*
 * Log lines for the Go side: one JSON object per line with logrus level
 * names, written to the pipe whose fd VRID_LOG_FD names.  Without that
 * pipe, errors still reach stderr; nothing else is ever printed into the
 * application's own output.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "vrid.h"

static int log_fd = -1;
static enum vrid_level log_level = VRID_LOG_WARN;

static const char *const level_names[] = {
	[VRID_LOG_ERROR] = "error",
	[VRID_LOG_WARN] = "warning",
	[VRID_LOG_INFO] = "info",
	[VRID_LOG_DEBUG] = "debug",
};

void vrid_log_init(void)
{
	const char *fd = getenv("VRID_LOG_FD");
	const char *level = getenv("VRID_LOG_LEVEL");
	struct stat st;

	for (int l = VRID_LOG_ERROR; level && l <= VRID_LOG_DEBUG; l++)
		if (strcmp(level, level_names[l]) == 0)
			log_level = l;
	/* The fd number may have been reused for something else: only a pipe will do. */
	if (fd && vrid_sys2(SYS_fstat, atoi(fd), &st) == 0 && S_ISFIFO(st.st_mode))
		log_fd = atoi(fd);
}

/* Copies s into out as a JSON string body; returns the bytes written. */
static size_t json_escape(char *out, size_t room, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < room; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = c;
		} else if (c < 0x20) {
			n += snprintf(out + n, room - n, "\\u%04x", c);
		} else {
			out[n++] = c;
		}
	}
	return n;
}

void vrid_log(enum vrid_level level, const char *fmt, ...)
{
	int saved_errno = errno;
	char msg[512], line[1200];
	size_t n;
	va_list ap;

	if (level > log_level || (log_fd < 0 && level != VRID_LOG_ERROR))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_fd < 0) {
		n = (size_t)snprintf(line, sizeof(line), "vrid: %s\n", msg);
		vrid_sys3(SYS_write, 2, line, n < sizeof(line) ? n : sizeof(line) - 1);
		errno = saved_errno;
		return;
	}
	n = (size_t)snprintf(line, sizeof(line), "{\"level\":\"%s\",\"pid\":%ld,\"msg\":\"",
			     level_names[level], vrid_sys0(SYS_getpid));
	n += json_escape(line + n, sizeof(line) - n - 3, msg);
	memcpy(line + n, "\"}\n", 3);
	vrid_sys3(SYS_write, log_fd, line, n + 3);
	errno = saved_errno;
}
