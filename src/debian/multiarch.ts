// Which package satisfies which relation across architectures (the multiarch
// spec, as dpkg's deparchsatisfied applies it), and which packages cannot be
// installed side by side.

/** What the arch rule needs to know about a candidate. */
export interface ArchFacts {
  architecture: string;
  multiArch?: "same" | "foreign" | "allowed" | "no";
}

/** `all` packages are installed as if they were of the native architecture. */
function effectiveArch(arch: string, native: string): string {
  return arch === "all" ? native : arch;
}

/**
 * The slot a package fills: one per name and architecture. An `all` package
 * fills the native slot, so `foo:all` and `foo:amd64` never both get selected.
 */
export function slotKey(name: string, architecture: string, native: string): string {
  return `${name}:${effectiveArch(architecture, native)}`;
}

/**
 * Whether `candidate` satisfies a relation with arch `qualifier` (undefined,
 * "any", "native" or an architecture) written by a package of `dependerArch`:
 * - Multi-Arch: foreign satisfies it whatever the architectures;
 * - `:any` needs Multi-Arch: allowed (or foreign);
 * - otherwise the architectures must match, `all` counting as native.
 */
export function archSatisfies(
  candidate: ArchFacts,
  qualifier: string | undefined,
  dependerArch: string,
  native: string,
): boolean {
  if (candidate.multiArch === "foreign") return true;
  if (qualifier === "any") return candidate.multiArch === "allowed";
  const wanted =
    qualifier === undefined
      ? effectiveArch(dependerArch, native)
      : qualifier === "native"
        ? native
        : qualifier;
  return effectiveArch(candidate.architecture, native) === wanted;
}
