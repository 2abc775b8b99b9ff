/*
 * runc's command line as bin/sysrunc reads it (its subcommand search, the removal of sysrunc's own
 * flags and container_id), with the flag tables generated from src/oci/runc-grammar.ts
 * (runc-grammar.h, written by scripts/build.mjs). The differential tests
 * (test/unit/runc-grammar-differential.test.ts) hold the two launchers to the same reading.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher.h"
#include "runc-grammar.h"

static int listed(const char *const *table, const char *arg) {
	for (; *table != NULL; table++)
		if (strcmp(*table, arg) == 0) return 1;
	return 0;
}

/* `<spelling>=<value>` of a flag in table: its value, or NULL. */
static const char *listed_with_value(const char *const *table, const char *arg) {
	for (; *table != NULL; table++) {
		size_t n = strlen(*table);
		if (strncmp(*table, arg, n) == 0 && arg[n] == '=') return arg + n + 1;
	}
	return NULL;
}

/* sh's `-?*`: a dash and at least one more character. */
static int flag_like(const char *arg) {
	return arg[0] == '-' && arg[1] != '\0';
}

static int own_flag(const char *arg) {
	return strncmp(arg, "--sysrunc-", 10) == 0 || strncmp(arg, "-sysrunc-", 9) == 0;
}

/* The subcommand search: help and version flags win over the subcommand, as in runc. */
static void find_subcommand(int argc, char **argv, struct launcher_call *call) {
	enum { NONE, VALUE, SUBCOMMAND } expect = NONE;
	int version = 0;
	const char *value;
	call->subcommand = "";
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (expect == SUBCOMMAND) {
			call->subcommand = arg;
			break;
		}
		if (expect == VALUE) {
			expect = NONE;
			continue;
		}
		if (listed(RUNC_GLOBAL_VALUE_FLAGS, arg)) expect = VALUE;
		else if (own_flag(arg)) call->own_flags = 1;
		else if (strcmp(arg, "--") == 0) expect = SUBCOMMAND;
		else if (listed(RUNC_VERSION_FLAGS, arg)) version = 1;
		else if (listed(RUNC_HELP_FLAGS, arg)) {
			call->subcommand = "--help";
			break;
		} else if ((value = listed_with_value(RUNC_VERSION_FLAGS, arg)) != NULL) version = listed(RUNC_TRUE_WORDS, value);
		else if ((value = listed_with_value(RUNC_HELP_FLAGS, arg)) != NULL) {
			if (listed(RUNC_TRUE_WORDS, value)) {
				call->subcommand = "--help";
				break;
			}
		} else if (!flag_like(arg)) {
			call->subcommand = arg;
			break;
		}
	}
	if (version && strcmp(call->subcommand, "--help") != 0) call->subcommand = "--version";
}

int launcher_parse(int argc, char **argv, struct launcher_call *call) {
	call->own_flags = 0;
	find_subcommand(argc, argv, call);
	call->args = argv;
	call->argc = argc;
	/* create and run keep them: the manager reads them from argv. */
	if (!call->own_flags || strcmp(call->subcommand, "create") == 0 || strcmp(call->subcommand, "run") == 0) return 0;
	/* Room for a name before args, as argv has its own (see struct launcher_call). */
	char **kept = calloc((size_t)argc + 2, sizeof *kept);
	if (kept == NULL) {
		perror("sysrunc: calloc for runc's argv");
		return -1;
	}
	int n = 0, global = 1, skip = 0;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (skip) skip = 0;
		else if (global && listed(RUNC_GLOBAL_VALUE_FLAGS, arg)) skip = 1;
		else if (global && own_flag(arg)) continue;
		else if (global && !flag_like(arg)) global = 0;
		else if (global && strcmp(arg, "--") == 0) global = 0;
		kept[1 + n++] = argv[i];
	}
	call->args = kept + 1;
	call->argc = n;
	return 0;
}

int launcher_container_id(int argc, char **args, struct container_target *out) {
	enum { GLOBAL, SUBCOMMAND, FLAGS, ID } phase = GLOBAL;
	int skip = 0, value_is_process = 0;
	const char *value;
	out->process_flag = 0;
	out->process_file = "";
	for (int i = 0; i < argc; i++) {
		const char *arg = args[i];
		if (skip) {
			if (value_is_process) out->process_file = arg;
			value_is_process = skip = 0;
			continue;
		}
		if (phase == GLOBAL) {
			if (listed(RUNC_GLOBAL_VALUE_FLAGS, arg)) skip = 1;
			else if (strcmp(arg, "--") == 0) phase = SUBCOMMAND;
			else if (!flag_like(arg)) phase = FLAGS;
			continue;
		}
		if (phase == SUBCOMMAND) {
			phase = FLAGS;
			continue;
		}
		if (phase == ID) {
			out->id = arg;
			return 1;
		}
		if (listed(RUNC_EXEC_PROCESS_FLAGS, arg)) {
			out->process_flag = 1;
			value_is_process = 1;
		} else if ((value = listed_with_value(RUNC_EXEC_PROCESS_FLAGS, arg)) != NULL) {
			out->process_flag = 1;
			out->process_file = value;
		}
		/* Value flags: runc exec's (delete has none). */
		if (listed(RUNC_EXEC_VALUE_FLAGS, arg)) skip = 1;
		else if (strcmp(arg, "--") == 0) phase = ID;
		else if (!flag_like(arg)) {
			out->id = arg;
			return 1;
		}
	}
	return 0;
}
