// The platforms niftyc builds images for: the name Docker and podman give each
// (`linux/arm64`), the name Debian gives its architecture (`arm64`), the ELF
// machine and class its programs have, and where its program loader and
// libraries live. amd64 is the default; one image per platform, from one lock.

export interface Platform {
  /** The canonical name: linux/amd64, linux/arm64, linux/arm/v7, … */
  name: string;
  os: "linux";
  /** OCI's GOARCH: amd64, arm64, arm, ppc64le, riscv64, 386, s390x. */
  architecture: string;
  /** OCI's variant: v8 for arm64, v7 for arm. */
  variant?: string;
  /** Debian's architecture name: amd64, arm64, armhf, ppc64el, riscv64, i386, s390x. */
  debian: string;
  /** e_machine of its programs. */
  machine: number;
  elfClass: 32 | 64;
  endian: "little" | "big";
  /** The GNU triplet of its multiarch directories: x86_64-linux-gnu, aarch64-linux-gnu, … */
  triplet: string;
  /** glibc's program loader, as Debian installs it. */
  loader: string;
  /** qemu-user's name for the CPU (qemu-aarch64, …): what binfmt_misc runs its programs with. */
  qemu: string;
}

const PLATFORMS: readonly Platform[] = [
  {
    name: "linux/amd64",
    os: "linux",
    architecture: "amd64",
    debian: "amd64",
    machine: 62,
    elfClass: 64,
    endian: "little",
    triplet: "x86_64-linux-gnu",
    loader: "/lib64/ld-linux-x86-64.so.2",
    qemu: "x86_64",
  },
  {
    name: "linux/arm64",
    os: "linux",
    architecture: "arm64",
    variant: "v8",
    debian: "arm64",
    machine: 183,
    elfClass: 64,
    endian: "little",
    triplet: "aarch64-linux-gnu",
    loader: "/lib/ld-linux-aarch64.so.1",
    qemu: "aarch64",
  },
  {
    name: "linux/arm/v7",
    os: "linux",
    architecture: "arm",
    variant: "v7",
    debian: "armhf",
    machine: 40,
    elfClass: 32,
    endian: "little",
    triplet: "arm-linux-gnueabihf",
    loader: "/lib/ld-linux-armhf.so.3",
    qemu: "arm",
  },
  {
    name: "linux/ppc64le",
    os: "linux",
    architecture: "ppc64le",
    debian: "ppc64el",
    machine: 21,
    elfClass: 64,
    endian: "little",
    triplet: "powerpc64le-linux-gnu",
    loader: "/lib64/ld64.so.2",
    qemu: "ppc64le",
  },
  {
    name: "linux/riscv64",
    os: "linux",
    architecture: "riscv64",
    debian: "riscv64",
    machine: 243,
    elfClass: 64,
    endian: "little",
    triplet: "riscv64-linux-gnu",
    loader: "/lib/ld-linux-riscv64-lp64d.so.1",
    qemu: "riscv64",
  },
  {
    name: "linux/386",
    os: "linux",
    architecture: "386",
    debian: "i386",
    machine: 3,
    elfClass: 32,
    endian: "little",
    triplet: "i386-linux-gnu",
    loader: "/lib/ld-linux.so.2",
    qemu: "i386",
  },
  {
    name: "linux/s390x",
    os: "linux",
    architecture: "s390x",
    debian: "s390x",
    machine: 22,
    elfClass: 64,
    endian: "big",
    triplet: "s390x-linux-gnu",
    loader: "/lib/ld64.so.1",
    qemu: "s390x",
  },
];

/** Other spellings of a platform: Docker's long forms and Debian's names. */
const ALIASES: Readonly<Record<string, string>> = {
  "linux/arm64/v8": "linux/arm64",
  "linux/aarch64": "linux/arm64",
  "linux/armhf": "linux/arm/v7",
  "linux/arm": "linux/arm/v7",
  "linux/ppc64el": "linux/ppc64le",
  "linux/i386": "linux/386",
  "linux/x86_64": "linux/amd64",
  "linux/amd64/v1": "linux/amd64",
};

export const DEFAULT_PLATFORM: Platform = PLATFORMS[0]!;

/** Every platform's canonical name, for messages and --help. */
export const PLATFORM_NAMES: readonly string[] = PLATFORMS.map((p) => p.name);

/** The platform a name means (`linux/arm64`, `arm64`, `linux/arm/v7`, `armhf`), or undefined. */
export function findPlatform(text: string): Platform | undefined {
  const lower = text.toLowerCase();
  const full = lower.startsWith("linux/") ? lower : `linux/${lower}`;
  const name = ALIASES[full] ?? full;
  return PLATFORMS.find((p) => p.name === name || `linux/${p.debian}` === name);
}

/** The platform of an image config's OCI architecture and variant (linux/arm64 is arm64 v8). */
export function platformOfOci(architecture: string, variant: string | undefined): Platform | undefined {
  return PLATFORMS.find((p) => p.architecture === architecture && p.variant === variant);
}

/** The platform of a Debian architecture name. */
export function platformOfDebian(arch: string): Platform | undefined {
  return PLATFORMS.find((p) => p.debian === arch);
}

/** A directory name for a platform's outputs: linux/arm/v7 → linux-arm-v7. */
export function platformDir(p: Platform): string {
  return p.name.replaceAll("/", "-");
}

/** glibc's built-in search directories on Debian, in its order, for a platform. */
export function libraryDirs(p: Platform): string[] {
  const multiarch = [`/lib/${p.triplet}`, `/usr/lib/${p.triplet}`];
  return p.elfClass === 64 && p.debian !== "arm64" && p.debian !== "riscv64"
    ? [...multiarch, "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    : [...multiarch, "/lib", "/usr/lib"];
}

/** Whether an ELF's machine, class and byte order are this platform's. */
export function runsOn(
  p: Platform,
  info: { class: 32 | 64; endian: "little" | "big"; machine: number },
): boolean {
  return info.machine === p.machine && info.class === p.elfClass && info.endian === p.endian;
}

/** How a message names a platform's CPU: `arm64 (aarch64, 64-bit)`. */
export function describePlatform(p: Platform): string {
  return `${p.name} (${p.triplet.split("-")[0]!.replace("_", "-")}, ${p.elfClass}-bit)`;
}
