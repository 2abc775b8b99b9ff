/*
 * The little JSON the C clients speak (json.h): a growing buffer and JSON strings written into it,
 * and a cursor that reads the manager's one-line answers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

enum { MAX_DEPTH = 32 };

int put(struct buf *b, const char *s, size_t n) {
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap == 0 ? 4096 : b->cap;
		while (cap < b->len + n + 1) cap *= 2;
		char *data = realloc(b->data, cap);
		if (data == NULL) return -1;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int put_str(struct buf *b, const char *s) { return put(b, s, strlen(s)); }

/* A JSON string of s, which is valid UTF-8: only '"', '\' and control characters escaped. */
int put_json_string(struct buf *b, const char *s) {
	if (put(b, "\"", 1) != 0) return -1;
	for (; *s != '\0'; s++) {
		char esc[8];
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c;
			if (put(b, esc, 2) != 0) return -1;
		} else if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			if (put(b, esc, 6) != 0) return -1;
		} else if (put(b, (const char *)&c, 1) != 0) {
			return -1;
		}
	}
	return put(b, "\"", 1);
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): what the manager reads unchanged. */
int valid_utf8(const unsigned char *s) {
	while (*s != '\0') {
		unsigned c = *s++, n, min, cp;
		if (c < 0x80) continue;
		if ((c & 0xe0) == 0xc0) n = 1, min = 0x80, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0) n = 2, min = 0x800, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0) n = 3, min = 0x10000, cp = c & 0x07;
		else return 0;
		for (; n > 0; n--, s++) {
			if ((*s & 0xc0) != 0x80) return 0;
			cp = (cp << 6) | (*s & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
	}
	return 1;
}

void ws(struct cursor *c) {
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

int eat(struct cursor *c, char ch) {
	ws(c);
	if (c->p >= c->end || *c->p != ch) return 0;
	c->p++;
	return 1;
}

static int hex4(struct cursor *c, unsigned *out) {
	*out = 0;
	for (int i = 0; i < 4; i++, c->p++) {
		if (c->p >= c->end) return 0;
		char h = *c->p;
		unsigned d = h >= '0' && h <= '9' ? (unsigned)(h - '0') : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10) : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10) : 16;
		if (d == 16) return 0;
		*out = *out << 4 | d;
	}
	return 1;
}

static int put_utf8(struct buf *b, unsigned cp) {
	char u[4];
	size_t n;
	if (cp < 0x80) u[0] = (char)cp, n = 1;
	else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	else if (cp < 0x10000) u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	else u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)), u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	return put(b, u, n);
}

/* A JSON string, decoded into out (NULL: skipped). A lone surrogate becomes U+FFFD, as Node writes it. */
int string(struct cursor *c, struct buf *out) {
	struct buf skip = {0};
	if (out == NULL) out = &skip;
	int ok = eat(c, '"');
	while (ok) {
		if (c->p >= c->end || (unsigned char)*c->p < 0x20) ok = 0;
		else if (*c->p == '"') break;
		else if (*c->p != '\\') ok = put(out, c->p++, 1) == 0;
		else if (++c->p >= c->end) ok = 0;
		else if (*c->p != 'u') {
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *at = strchr(from, *c->p);
			ok = *c->p != '\0' && at != NULL && put(out, to + (at - from), 1) == 0;
			c->p++;
		} else {
			unsigned cp, low;
			c->p++;
			ok = hex4(c, &cp);
			if (ok && cp >= 0xd800 && cp < 0xdc00 && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u') {
				struct cursor peek = {c->p + 2, c->end};
				if (hex4(&peek, &low) && low >= 0xdc00 && low < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00), c->p = peek.p;
			}
			if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
			ok = ok && put_utf8(out, cp) == 0;
		}
	}
	free(skip.data);
	if (ok && out->data == NULL) ok = put(out, "", 0) == 0;
	return ok && eat(c, '"');
}

int integer(struct cursor *c, long *out) {
	ws(c);
	char *end;
	errno = 0;
	*out = strtol(c->p, &end, 10);
	if (end == c->p || end > c->end || errno != 0) return 0;
	c->p = end;
	return 1;
}

int skip_value(struct cursor *c, int depth) {
	ws(c);
	if (c->p >= c->end || depth > MAX_DEPTH) return 0;
	char open = *c->p;
	if (open == '"') return string(c, NULL);
	if (open != '{' && open != '[') {
		/* A number, true, false or null: up to the next delimiter. */
		const char *start = c->p;
		while (c->p < c->end && strchr(",]} \t\r\n", *c->p) == NULL) c->p++;
		return c->p > start;
	}
	c->p++;
	if (eat(c, open == '{' ? '}' : ']')) return 1;
	do {
		if (open == '{' && !(string(c, NULL) && eat(c, ':'))) return 0;
		if (!skip_value(c, depth + 1)) return 0;
	} while (eat(c, ','));
	return eat(c, open == '{' ? '}' : ']');
}

/* Calls member() for each member of an object at the cursor; 0 if malformed. */
int object(struct cursor *c, int (*member)(struct cursor *, const char *, void *), void *ctx) {
	if (!eat(c, '{')) return 0;
	if (eat(c, '}')) return 1;
	do {
		struct buf key = {0};
		int ok = string(c, &key) && eat(c, ':') && member(c, key.data, ctx);
		free(key.data);
		if (!ok) return 0;
	} while (eat(c, ','));
	return eat(c, '}');
}

/* A decoded string that is a C string too (no NUL inside). */
int c_string(struct cursor *c, struct buf *out) {
	return string(c, out) && strlen(out->data) == out->len;
}

/* Calls element() for each element of an array at the cursor; 0 if malformed. */
int array(struct cursor *c, int (*element)(struct cursor *, void *), void *ctx) {
	if (!eat(c, '[')) return 0;
	if (eat(c, ']')) return 1;
	do {
		if (!element(c, ctx)) return 0;
	} while (eat(c, ','));
	return eat(c, ']');
}
