// The containerd (and so runc and manager) id of a tenant's container. The manager knows
// containers by id host-wide and two tenants may both name one "web", so the id carries the
// namespace; and since both a namespace and a name may contain ".", the namespace's length goes
// first: "<len(ns)>-<ns>.<name>". Read left to right (digits up to the first "-", then exactly that
// many characters, a ".", the rest), every id names one (ns, name) pair only: tenant "a"'s "b.c"
// is "1-a.b.c", tenant "a.b"'s "c" is "3-a.b.c". The id keeps containerd's identifier rules
// (letters and digits, single "." "_" "-" between them; at most 76 characters).
//
// Versions before 0.3 used "<ns>.<name>", which two pairs could share. Such containers are still
// found by their name label (legacyContainerdId), and a new id equal to one of them is refused.

/** containerd's limit for identifiers. */
export const MAX_CONTAINERD_ID = 76;

export function containerdId(ns: string, name: string): string {
  return `${ns.length}-${ns}.${name}`;
}

/** The id versions before 0.3 gave (ns, name); not injective, read only to find old containers. */
export function legacyContainerdId(ns: string, name: string): string {
  return `${ns}.${name}`;
}

/** The (ns, name) an id of containerdId() stands for; undefined for any other id. */
export function parseContainerdId(id: string): { ns: string; name: string } | undefined {
  const m = /^([1-9]\d*)-/.exec(id);
  if (m === null) return undefined;
  const start = (m[1] as string).length + 1;
  const end = start + Number(m[1]);
  if (id[end] !== '.' || end + 1 >= id.length) return undefined;
  return { ns: id.slice(start, end), name: id.slice(end + 1) };
}
