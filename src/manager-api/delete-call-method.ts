// The manager's deleteCall method (manager-api/v1.ts's table lists it): its own file to keep the
// table's file short. Same schema rules as v1.ts.
import * as z from 'zod/mini';

const AbsPath = z.string().check(z.startsWith('/'), z.maxLength(4096));

/**
 * The synchronous delete's release from the call's raw argv, for the C client
 * (dist/sysrunc-delete-call), which knows nothing of runc's flags: runc's delete has run
 * (runcStatus is its exit status); the manager parses argv as the per-call binary does, and
 * releases the container unless runc still has it. A bad call or a failed release is an answer
 * too: the messages, formatted in the call's --log-format (a failed release is a warning), and
 * exitCode, which is runc's status. The client performs `writes` in order and exits with exitCode.
 */
export const DELETE_CALL = {
  params: z.object({
    /** The argv after the program name, as bin/sysrunc received it (sysrunc's flags dropped). */
    argv: z.array(z.string().check(z.maxLength(65536))).check(z.maxLength(4096)),
    cwd: AbsPath,
    runcStatus: z.int().check(z.nonnegative(), z.lte(255)),
  }),
  result: z.object({
    exitCode: z.int().check(z.nonnegative()),
    /** As prepareCall's. */
    writes: z.array(z.object({ text: z.string(), file: z.optional(z.string()) })),
  }),
  /** As release. */
  idempotent: true,
};
