/** The manager API's version (see v1.ts); kept apart so the per-call binary loads no schemas. */
export const API_VERSION = 1;
