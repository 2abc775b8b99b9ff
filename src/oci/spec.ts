// OCI runtime-spec v1.3.0 types (config.json and container state). Import from here, not from the
// generated file: this module is the stable name for them.
export type * from './spec-types.generated.ts';

import type { Hooks } from './spec-types.generated.ts';

/** A hook stage name: "prestart" | "createRuntime" | ... | "poststop". */
export type HookName = keyof Hooks;
