// The words of the language, as data: the generated editor grammar and the
// did-you-mean suggestions read them from here.

export const INSTRUCTION_KEYWORDS = [
  "ARG",
  "FETCH",
  "LINK",
  "SYMLINK",
  "DIR",
  "FILE",
  "COPY",
  "GROUP",
  "USER",
  "KEYGEN",
  "INITTAB",
  "STOPSIGNAL",
  "ENV",
  "HOSTNAME",
  "EXPOSE",
  "BIND",
  "LABEL",
  "ARCHIVE",
  "PACKAGE",
  "SERVICE",
  "PLATFORM",
] as const;

/** Option words that appear inside instructions (MODE 0755, OWNER a:b, TO /path …). */
export const OPTION_KEYWORDS = [
  "EXTRACT",
  "TO",
  "MODE",
  "OWNER",
  "APPLETS",
  "IN",
  "UID",
  "GID",
  "HOME",
  "SHELL",
  "GROUPS",
  "PASSWORD",
  "PASSWORD-HASH",
  "LOCKED",
  "AT",
  "TTY",
  "RO",
  "RW",
  "COMPONENTS",
  "URL",
  "KEYRING",
  "FILES",
] as const;

export type InstructionKeyword = (typeof INSTRUCTION_KEYWORDS)[number];
