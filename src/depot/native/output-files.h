/*
 * The supervisor's output files (included by supervise.c, after its report(), fail() and
 * write_all()). Each stream has its current file and at most one older <name>.1; a file is
 * rotated when it reaches a quarter of SYSRUNC_DEPOT_MAX_OUTPUT, so a process keeps at most that
 * many bytes of output on disk, the oldest dropped. <name>.base holds the stream offset of the
 * current file's first byte (src/depot/output-files.ts reads them together).
 */
#define DEFAULT_MAX_OUTPUT (10LL * 1024 * 1024)
#define MIN_FILE_CAP 1024LL

/* An output file: size of the current file and the stream offset of its first byte. */
struct output {
	const char *name;
	int fd;
	long long size;
	long long base;
};

/* Each stream keeps its current file and one .1 file of at most this many bytes each. */
static long long file_cap = DEFAULT_MAX_OUTPUT / 4;

static void write_base(const struct output *o) {
	char tmp[64], final[64], text[32];
	snprintf(tmp, sizeof tmp, "%s.base.tmp", o->name);
	snprintf(final, sizeof final, "%s.base", o->name);
	int len = snprintf(text, sizeof text, "%lld\n", o->base);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) fail("open", tmp);
	if (write_all(fd, text, (size_t)len) < 0) fail("write", tmp);
	close(fd);
	if (rename(tmp, final) < 0) fail("rename", final);
}

/* The current file becomes <name>.1 (the older one is dropped) and a new one starts; the base file
 * is written last: a reader that sees the base change reads again. */
static void rotate(struct output *o) {
	char old[64];
	snprintf(old, sizeof old, "%s.1", o->name);
	if (rename(o->name, old) < 0) fail("rename", old);
	close(o->fd);
	o->fd = open(o->name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (o->fd < 0) fail("open", o->name);
	o->base += o->size;
	o->size = 0;
	write_base(o);
}

static void output_write(struct output *o, const char *buf, size_t len) {
	while (len > 0) {
		if (o->size >= file_cap) rotate(o);
		size_t n = len;
		if ((long long)n > file_cap - o->size) n = (size_t)(file_cap - o->size);
		if (write_all(o->fd, buf, n) < 0) {
			dprintf(2, "sysrunc-depot-supervise: write %s: %s (errno %d)\n", o->name, strerror(errno), errno);
			return;
		}
		o->size += (long long)n;
		buf += n;
		len -= n;
	}
}

static void output_open(struct output *o, const char *name) {
	o->name = name;
	o->fd = open_output(name);
	struct stat st;
	o->size = fstat(o->fd, &st) == 0 ? (long long)st.st_size : 0;
	o->base = 0;
}

/* SYSRUNC_DEPOT_MAX_OUTPUT: bytes of output a process keeps (both streams, with their .1 files). */
static void read_max_output(void) {
	const char *v = getenv("SYSRUNC_DEPOT_MAX_OUTPUT");
	if (v != NULL && *v != '\0') {
		char *end;
		long long max = strtoll(v, &end, 10);
		if (*end != '\0' || max <= 0) {
			report("SYSRUNC_DEPOT_MAX_OUTPUT=%s: not a positive number of bytes", v);
			exit(1);
		}
		file_cap = max / 4 < MIN_FILE_CAP ? MIN_FILE_CAP : max / 4;
	}
	unsetenv("SYSRUNC_DEPOT_MAX_OUTPUT"); /* not the runtime's or the process's business */
}

