// Container ids: runc's own rule for their characters (libcontainer), plus a length limit. An id
// names files: runc's state dir <root>/<id>, and sysrunc's <id>.json record, prepared bundle and run
// dir; a file name has at most 255 bytes (NAME_MAX), so ids have at most 250 characters.
export const CONTAINER_ID = /^[\w+\-.]+$/;
export const MAX_CONTAINER_ID_LENGTH = 250;

/** Why the id is refused, as runc words it, or undefined when it is fine. */
export function containerIdProblem(id: string): string | undefined {
  if (!CONTAINER_ID.test(id) || id === '.' || id === '..') return `invalid container id format: ${shown(id)}`;
  if (id.length > MAX_CONTAINER_ID_LENGTH) return `invalid container id format: ${shown(id)}: ${id.length} characters, more than ${MAX_CONTAINER_ID_LENGTH}`;
  return undefined;
}

function shown(id: string): string {
  const printable = JSON.stringify(id).slice(1, -1);
  return printable.length > 40 ? `${printable.slice(0, 40)}...` : printable;
}
