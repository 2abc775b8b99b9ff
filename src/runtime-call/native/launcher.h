/*
 * The C launcher's parts (dist/sysrunc, launcher.c): its reading of runc's command line
 * (launcher-argv.c, tables generated from src/oci/runc-grammar.ts) and of the config file
 * (launcher-config.c). Both read exactly as bin/sysrunc does, or say "hand to the script".
 */
#ifndef SYSRUNC_LAUNCHER_H
#define SYSRUNC_LAUNCHER_H

/* runc's command line as bin/sysrunc reads it. */
struct launcher_call {
	/* The subcommand ("" for none; "--help" or "--version" where those flags win). */
	const char *subcommand;
	/* Whether argv holds sysrunc's own `--sysrunc-<name>=<value>` flags. */
	int own_flags;
	/* runc's argv after its name: sysrunc's flags dropped, but for create and run; args[-1] is
	 * writable room for a program name (argv's own, or a copy's). */
	char **args;
	int argc;
};

/* Parses argv (after the program's name, which must be argv[-1]) into *call; 0, or -1 out of memory (reported). */
int launcher_parse(int argc, char **argv, struct launcher_call *call);

/* What follows delete's or exec's flags. */
struct container_target {
	const char *id;
	/* exec's --process: whether given, and its file ("" if none). */
	int process_flag;
	const char *process_file;
};

/* The container id of args (runc's argv after its name); 1 and *out filled, or 0 if there is none. */
int launcher_container_id(int argc, char **args, struct container_target *out);

/* The runtime and the manager socket. */
struct launcher_config {
	const char *runtime, *socket;
};

/*
 * $SYSRUNC_RUNTIME and $SYSRUNC_MGR_SOCKET, the config file for those unset or empty, then the
 * defaults: 0, or -1 for a config file this does not read (bin/sysrunc's to read).
 */
int launcher_read_config(struct launcher_config *out);

#endif
