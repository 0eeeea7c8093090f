// Help texts: the CLI teaches its own use.
export const MAIN_HELP = `niftyc — compile Niftyfile recipes into reproducible container images

Usage:
  niftyc build <recipe> [options]      build the rootfs tarball and its run configs
  niftyc check <recipe>... [options]   parse and check recipes; no network, no writes
  niftyc fmt [--check] [recipe...]     rewrite recipes in the one layout (--check: show the diff)
  niftyc lsp                           the language server for editors, on stdio
  niftyc cache <import|ls|gc|verify>   look after the content-addressed store
  niftyc install <build-dir> [options] unpack a build into /var/lib/machines for machinectl
  niftyc instances <build> --count N  N machines booting one shared tree (systemd units);
                                       --on-demand: each boots on its first connection
  niftyc instances status <dir>        which instances run, which are idle
  niftyc forward HOST:PORT             on-demand instances' forwarder, started by systemd's socket
  niftyc push <build|recipe> <ref>     push the OCI image to a registry (REGISTRY/REPOSITORY:TAG)
  niftyc sign <ref> --key KEY          sign an image in a registry (cosign's layout)
  niftyc keygen-signing [PREFIX]       make PREFIX.key and PREFIX.pub (default cosign.key, cosign.pub)
  niftyc verify <ref|build> --recipe R rebuild from the provenance's inputs; print "reproduced: sha256:…"
  niftyc run <recipe|build> [-- cmd]   build if needed and boot it: nspawn as root, bwrap or podman as a user
  niftyc lock <recipe> [--update]      resolve PACKAGE lines into <recipe>.lock (pinned by digest)
  niftyc outdated <recipe>             newer versions of locked packages; exit 3 for security fixes

  niftyc <command> --help              options of one command
  niftyc --version

Examples:
  niftyc build recipes/ssh.nifty --secret luser-password=./password.txt
  niftyc run recipes/ssh.nifty --secret luser-password=./password.txt --detach
  niftyc run --stop ssh

Environment (read once, at start):
  SOURCE_DATE_EPOCH     time stamp of every file in the image (default 0)
  NIFTY_CACHE           the store (default ./cache)
  NIFTY_MIRROR_DEBIAN   Debian archive URL(s) for debian: sources and ARCHIVE debian (default: apt's sources)
  NIFTY_MIRROR_<NAME>   the same for any archive name (NIFTY_MIRROR_DEBIAN_SECURITY: debian-security)
  NO_COLOR              no colour in diagnostics
  NIFTY_NO_STAMPS       build even when a stamp shows nothing changed (docs/cache.md)

Exit status: 0 success, 1 the recipe or its inputs are wrong, 2 bad command line,
3 (outdated only) security updates exist, 70 an internal error (a bug in niftyc),
130 interrupted; run exits with the container's status.
Docs: docs/language.md (the language), docs/outputs.md (what a build writes), docs/run.md, docs/cache.md.`;

export const BUILD_HELP = `Usage: niftyc build <recipe> [options]

Builds <recipe> into out/<name>/ (rootfs.tar, build.json and the run configs).
The rootfs tarball is reproducible: same recipe and inputs, same bytes.
Run again with nothing changed, it answers "up to date" from a stamp in the store,
which records each file it read by identity (docs/cache.md, "Up-to-date stamps").
<recipe> is a file, a directory (its Niftyfile, or its one .nifty file), or - to read
the recipe from standard input (named stdin; COPY sources and its lock are then in the
working directory).

Options:
  --out DIR             output directory (default out/<recipe name>); replaced whole when done,
                        so it must be new, empty, or one a build wrote
  --cache DIR           content store (default $NIFTY_CACHE or ./cache)
  --arg NAME=VALUE      value for an ARG of the recipe (repeatable)
  --secret ID=FILE      a build secret from a file (repeatable); ID=env:VAR reads variable VAR.
                        One final newline is dropped. Only crypt hashes and derived keys reach the image.
  --offline             never use the network: every FETCH and locked package must already be in the store
  --locked              use <recipe>.lock as it is: a lock that does not cover the PACKAGE lines is an
                        error (for CI) instead of being resolved again and rewritten
  --mirror NAME=URL     a mirror for NAME: sources, e.g. debian=http://deb.example/debian (repeatable)
  --platform LIST       the platforms to build, Docker's names, comma-separated: linux/amd64 (default),
                        linux/arm64, linux/arm/v7, linux/ppc64le, linux/riscv64, linux/386, linux/s390x
                        (Debian's arm64, armhf, ppc64el, i386 too). Each resolves its own section of
                        <recipe>.lock from the same suites; no emulator runs at build time.
                        One platform writes out/<name>/ as usual; several write out/<name>/<os-arch[-variant]>/
                        each (linux-arm64, linux-arm-v7) and an OCI image index at out/<name>/oci/
  --format LIST         comma-separated outputs: rootfs,nspawn,systemd,docker,oci,docker-archive,sbom,
                        cyclonedx,provenance,bundle (default: all but bundle, which unpacks the rootfs,
                        and cyclonedx, the CycloneDX 1.6 SBOM beside the SPDX one: add it, e.g. --format all
                        or --format rootfs,sbom,cyclonedx); "all" for every one
  --timeout SECONDS     network timeout (default 30; 60 for registries): connecting and each wait for
                        data may take this long, and a whole request (headers and body) must end
                        within it plus 1 s per 16 KiB moved, so a slow link that averages 16 KiB/s
                        finishes and a server that dribbles is cut after about SECONDS
  --limit NAME=VALUE    raise a limit on what a download or archive may bring (repeatable):
                        download-size (default 8G), member-size (one file from an archive, 4G),
                        entry-name (characters of an entry's path or link target, 4096),
                        entries (of one archive, 1000000), inrelease-size (a suite's InRelease, 8M),
                        index-size (a Packages index, 256M). See docs/security.md
  --strict              warnings are errors
  --allow-writable-setuid
                        let a setuid or setgid file every user may write into the image (NIFTY233
                        otherwise); every setuid or setgid file is listed in one warning (NIFTY232)
  --allow-system-binds  let BIND name the host's /, /etc, /usr, /root, /proc, /dev, /run… (NIFTY025;
                        see docs/language.md#bind)
  --json                print one JSON object with the result on stdout (absolute paths)
  -q, --quiet           no progress on stderr (a lock it writes is still named)
  --push REF            then push the OCI image to REGISTRY/REPOSITORY:TAG (see niftyc push --help
                        for --username, --password-stdin, --ca-file, --insecure, --sign, --key-passphrase)
  --cache-from REF      first fetch what the store lacks from a cache --cache-to pushed (a missing tag
                        is only noted; a malformed one is a warning, and the build goes on without it);
                        only blobs that match their digests are taken, and every step runs here from
                        them, so with --offline a fresh machine builds the same digest without downloading
  --cache-to REF        then push the blobs the build's steps need (downloads, .debs, file bytes), as
                        one OCI artifact; no step records: other machines could not check them

Example:
  niftyc build recipes/ssh.nifty --secret luser-password=./password.txt --out out/ssh`;

export const CHECK_HELP = `Usage: niftyc check <recipe>... [options]

Parses and checks recipes without touching the network or writing anything;
reports every problem of a file at once, as file:line:col. - reads a recipe from
standard input (named stdin; COPY sources are then in the working directory).

Options:
  --arg NAME=VALUE      value for an ARG (repeatable)
  --strict              warnings are errors
  --allow-system-binds  let BIND name the host's /, /etc, /usr, /root, /proc, /dev, /run… (NIFTY025)
  --allow-writable-setuid
                        let a MODE make a setuid or setgid file every user may write (NIFTY233)
  --platform P[,P…]     check what a build for these platforms would refuse (NIFTY255, NIFTY256);
                        without it, each platform the recipe's PLATFORM line lists
  --json                diagnostics as JSON on stdout`;

export const FMT_HELP = `Usage: niftyc fmt [--check] [recipe...]

Rewrites recipes in the one layout: instruction keywords and option words
(MODE, OWNER, RO …, where the line takes them as options) in upper case, other
words as written, one space between words, continuation
lines indented by four spaces, comments kept, at most one blank line, no
trailing blanks; heredoc bodies are left as they are, but
for their line ends (CRLF becomes LF, as the build reads it). Only the
layout changes, never what the recipe builds. A recipe with syntax errors is
not rewritten. Without a recipe, formats standard input to standard output.

Options:
  --check               change nothing: print a unified diff, exit 1 if a recipe would change`;

export const LSP_HELP = `Usage: niftyc lsp

The language server (LSP over stdin and stdout) for editors: the diagnostics of
niftyc check as you type, completion, hover, go to definition, symbols,
formatting and quick fixes. See docs/editors.md.

Options:
  --cache DIR           the store whose Debian indices give package names (default
                        $NIFTY_CACHE or ./cache); read only, nothing is downloaded
  --stdio               accepted for editors that pass it: stdio is the only transport`;

export const CACHE_HELP = `Usage: niftyc cache <command> [--cache DIR]

Commands:
  import <file>...      add files to the store, printing sha256:<hex>  <file> for each
                        (air-gapped: import the files, then build --offline)
  ls                    list stored blobs with size and last use
  gc [--days N]         remove blobs no build used in the last N days (default 30)
  verify                re-hash every blob; move those that no longer match to quarantine/

Options:
  --cache DIR           the store (default $NIFTY_CACHE or ./cache)
  --json                machine-readable output`;

export const INSTALL_HELP = `Usage: niftyc install <build-dir> [options]

Unpacks <build-dir>/rootfs.tar as <machines-dir>/<name> and puts <name>.nspawn
in <settings-dir>, where systemd-nspawn trusts it; then: machinectl start <name>.

Options:
  --machines-dir DIR    default /var/lib/machines; made 0700 (the tree keeps the image's
                        setuid programs), refused when another user owns it
  --settings-dir DIR    default /etc/systemd/nspawn; nspawn reads only it, /run/systemd/nspawn,
                        or the machines directory (started with --settings=trusted)
  --root DIR            install into the machine whose / is DIR (like systemctl --root):
                        the two directories above are that machine's (without '..' or '.'),
                        written under DIR
  --replace             replace an installed machine of the same name
  --allow-system-binds  install a machine whose BIND leads to a system directory, or lies on a
                        path another user could change (judged on this host, as niftyc run does;
                        not under --root)

Example:
  niftyc install out/ssh --root /var/lib/machines/host    (then, in host: machinectl start ssh)`;

export const PUSH_HELP = `Usage: niftyc push <build-dir|recipe> <registry>/<repository>:<tag> [options]

Pushes the OCI image of a build (<build-dir>/oci, from niftyc build) to a registry over
the OCI distribution API and prints where it is: registry/repository@sha256:…
A multi-platform build (build --platform a,b) is pushed as an image index: each platform's
image by its digest, then the index under the tag (podman run --platform picks from it).
Blobs the registry has are not sent again, blobs this cache pushed to another repository
of the same registry are mounted from there, and the manifest goes last, so a failed push
never leaves a tag pointing at a missing blob. Given a recipe, it is built first (the
build options of niftyc build apply).

Options:
  --username USER       log in as USER, with the password read from standard input...
  --password-stdin      ...(one final newline dropped). Without these, credentials come from
                        $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
                        ~/.config/containers/auth.json, then ~/.docker/config.json
                        ("auths", "credHelpers", "credsStore"), as podman login and docker login write them
  --ca-file FILE        trust the CAs in FILE (PEM) beside the system's
  --insecure            plain http, allowed only for a registry on this machine (127.0.0.1, ::1, localhost)
  --timeout SECONDS     connecting and each wait for data may take this long (default 60), and each
                        request (headers and body) must end within it plus 1 s per 16 KiB moved
  --cache DIR           the store (default $NIFTY_CACHE or ./cache); remembers pushed blobs for mounts
  --sign KEY            sign the pushed manifest with KEY (ECDSA P-256 PEM: cosign's format, as
                        keygen-signing writes it, PKCS#8 or SEC1; mode 0600) as cosign
                        does: tag sha256-<hex>.sig, verified by skopeo/podman's sigstoreSigned policy
  --key-passphrase SRC  the key's passphrase from file:PATH or env:VARIABLE (else asked at a terminal)
  --json                print the result as JSON (digest, config, layers, uploaded, mounted, existing)
  -q, --quiet           no progress on stderr (a lock it writes is still named)

Examples:
  niftyc push out/ssh registry.example.com/team/ssh:1.0
  niftyc push out/ssh registry.example.com/team/ssh:1.0 --sign cosign.key --key-passphrase env:KEY_PASS
  echo "$TOKEN" | niftyc push out/ssh ghcr.io/me/ssh:latest --username me --password-stdin
  niftyc push out/ssh 127.0.0.1:5000/ssh:dev --insecure

Docs: docs/distribution.md.`;

export const SIGN_HELP = `Usage: niftyc sign <registry>/<repository>:<tag>|@sha256:… --key KEY [options]

Signs the manifest (or index) the reference names now, in cosign's key-pair format: the
simple-signing payload ({"critical":{"identity":{"docker-reference":…},"image":
{"docker-manifest-digest":…},"type":"cosign container image signature"},"optional":…}),
an ECDSA P-256 signature in the dev.cosignproject.cosign/signature annotation, pushed
under the tag sha256-<hex>.sig. skopeo and podman verify it with a policy.json requirement
{"type":"sigstoreSigned","keyPath":"cosign.pub","signedIdentity":{"type":"matchRepository"}}
and use-sigstore-attachments: true in registries.d. Prints the signature's tag.

Options:
  --key KEY             the private key, ECDSA P-256 PEM: cosign's format (as keygen-signing writes
                        it), PKCS#8 (encrypted or not) or SEC1; mode 0600
  --key-passphrase SRC  file:PATH or env:VARIABLE (never the passphrase itself); else asked at a terminal
  --username USER, --password-stdin, --ca-file FILE, --insecure, --timeout SECONDS: as for push
  -q, --quiet           do not name the signature pushed on stderr (its tag is still printed)

Docs: docs/distribution.md.`;

export const KEYGEN_SIGNING_HELP = `Usage: niftyc keygen-signing [PREFIX] [--key-passphrase SRC|--no-passphrase]

Writes a new ECDSA P-256 key pair for --sign: PREFIX.key (mode 0600) and PREFIX.pub (what
policy.json's keyPath names). The key is encrypted under the passphrase in cosign's own
format (ENCRYPTED SIGSTORE PRIVATE KEY: scrypt, NaCl secretbox), which cosign sign --key
reads as it is; --key-format pkcs8 writes encrypted PKCS#8 (AES-256) for openssl instead.
PREFIX defaults to cosign. An existing file is never replaced. The same with openssl:
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -out cosign.key
  openssl pkey -in cosign.key -pubout -out cosign.pub

Options:
  --key-passphrase SRC  file:PATH or env:VARIABLE; else asked at a terminal
  --key-format FORMAT   cosign (the default) or pkcs8
  --no-passphrase       write the key unencrypted (PKCS#8)

Docs: docs/distribution.md.`;

export const VERIFY_HELP = `Usage: niftyc verify <registry>/<repo>:<tag>|<build-dir> --recipe RECIPE [options]

Rebuilds an image from what its provenance names and compares. The provenance is the
pushed image's in-toto referrer, or provenance.json of a build directory. RECIPE (and the
lock beside it) must have the digests it names. The rebuild runs in a fresh store with the
provenance's --arg values and SOURCE_DATE_EPOCH, --locked. Prints "reproduced: sha256:…"
(exit 0), or "not reproduced: …" with the first file that differs: its path, type, size,
mode and digest in the original and in the rebuild (exit 1). A multi-platform image (an
index) is rebuilt for every platform its provenance names, and each platform that differs
is named with its first file that differs.

Options:
  --recipe RECIPE       the recipe to rebuild from (its lock is RECIPE.lock, as built)
  --key PUB             first check the image's cosign signature with this public key
  --cache-from REF      take downloads from a --cache-to artifact (with --offline: nothing else)
  --offline             download nothing from the recipe's sources
  --secret ID=FILE      secrets the recipe reads (the provenance names them, never their values)
  --mirror NAME=URL     as for build
  --username USER, --password-stdin, --ca-file FILE, --insecure, --timeout SECONDS: as for push
  --limit NAME=VALUE, --strict, --allow-writable-setuid, --allow-system-binds: as for build
  -q, --quiet           do not say on stderr that the signature was verified

Docs: docs/distribution.md.`;
