/*
 * The little JSON the C clients speak (json.c): a growing buffer and JSON strings written into it,
 * and a cursor that reads the manager's one-line answers and the C launcher's config file.
 * Functions return 1 (or 0 for put*) on success; a reader that returns 0 has found malformed JSON.
 */
#ifndef SYSRUNC_JSON_H
#define SYSRUNC_JSON_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len, cap;
};

/* Appends n bytes (kept NUL-terminated); 0, or -1 out of memory. */
int put(struct buf *b, const char *s, size_t n);
int put_str(struct buf *b, const char *s);
/* A JSON string of s, which is valid UTF-8. */
int put_json_string(struct buf *b, const char *s);
/* Strict UTF-8: what the manager reads unchanged. */
int valid_utf8(const unsigned char *s);

struct cursor {
	const char *p, *end;
};

void ws(struct cursor *c);
int eat(struct cursor *c, char ch);
/* A JSON string, decoded into out (NULL: skipped). */
int string(struct cursor *c, struct buf *out);
/* The same, refused if it holds a NUL. */
int c_string(struct cursor *c, struct buf *out);
int integer(struct cursor *c, long *out);
int skip_value(struct cursor *c, int depth);
/* Calls member() for each member of an object, element() for each element of an array. */
int object(struct cursor *c, int (*member)(struct cursor *, const char *, void *), void *ctx);
int array(struct cursor *c, int (*element)(struct cursor *, void *), void *ctx);

#endif
