// The table of instructions: the only place that maps keywords to behaviour.
import type { InstructionSpec, Typed } from "./spec.ts";
import type { InstructionKeyword } from "../../grammar/keywords.ts";
import { arg, type ArgInstruction } from "./arg.ts";
import { archive, type ArchiveInstruction } from "./archive.ts";
import { packageSpec, type PackageInstruction } from "./package.ts";
import { bind, type BindInstruction } from "./bind.ts";
import { copy, type CopyInstruction } from "./copy.ts";
import { dir, type DirInstruction } from "./dir.ts";
import { env, type EnvInstruction } from "./env.ts";
import { expose, type ExposeInstruction } from "./expose.ts";
import { fetch, type FetchInstruction } from "./fetch.ts";
import { file, type FileInstruction } from "./file.ts";
import { group, type GroupInstruction } from "./group.ts";
import { hostname, type HostnameInstruction } from "./hostname.ts";
import { inittab, type InittabInstruction } from "./inittab.ts";
import { keygen, type KeygenInstruction } from "./keygen.ts";
import { label, type LabelInstruction } from "./label.ts";
import { link, type LinkInstruction } from "./link.ts";
import { stopsignal, type StopsignalInstruction } from "./stopsignal.ts";
import { service, type ServiceInstruction } from "./service.ts";
import { symlink, type SymlinkInstruction } from "./symlink.ts";
import { user, type UserInstruction } from "./user.ts";
import { platform, type PlatformInstruction } from "./platform.ts";

export type Instruction =
  | ArgInstruction
  | BindInstruction
  | CopyInstruction
  | DirInstruction
  | EnvInstruction
  | ExposeInstruction
  | FetchInstruction
  | FileInstruction
  | GroupInstruction
  | HostnameInstruction
  | InittabInstruction
  | KeygenInstruction
  | LabelInstruction
  | LinkInstruction
  | StopsignalInstruction
  | SymlinkInstruction
  | UserInstruction
  | ArchiveInstruction
  | PackageInstruction
  | ServiceInstruction
  | PlatformInstruction;

type SpecTable = { [K in InstructionKeyword]: InstructionSpec<Extract<Instruction, { kind: K }>> };

/** In the order the reference documents them. */
export const INSTRUCTIONS: SpecTable = {
  ARG: arg,
  PLATFORM: platform,
  ARCHIVE: archive,
  PACKAGE: packageSpec,
  FETCH: fetch,
  LINK: link,
  SYMLINK: symlink,
  DIR: dir,
  FILE: file,
  COPY: copy,
  GROUP: group,
  USER: user,
  KEYGEN: keygen,
  INITTAB: inittab,
  SERVICE: service,
  STOPSIGNAL: stopsignal,
  ENV: env,
  HOSTNAME: hostname,
  EXPOSE: expose,
  BIND: bind,
  LABEL: label,
};

export function specFor<T extends Instruction>(instruction: T): InstructionSpec<T> {
  return INSTRUCTIONS[instruction.kind] as unknown as InstructionSpec<T>;
}

export function isKeyword(word: string): word is InstructionKeyword {
  return Object.hasOwn(INSTRUCTIONS, word);
}

export type { Typed };
