// The image config of recipes/ssh.nifty, with one more numeric and one text ENV.
import type { ImageConfig } from "../../src/image/config.ts";

export function sshConfig(overrides: Partial<ImageConfig> = {}): ImageConfig {
  return {
    name: "ssh",
    env: [["PORT", "2200"], ["WORKERS", "4"], ["GREETING", "hello"]],
    hostname: "nifty",
    exposedPorts: [{ port: 2200, protocol: "tcp" }],
    binds: [{ readOnly: true, hostPath: "/usr/share/zoneinfo", containerPath: "/usr/share/zoneinfo" }],
    labels: [],
    stopSignal: { name: "SIGUSR2", number: 12, source: "recipe" },
    init: { kind: "busybox", command: ["/sbin/init"] },
    architecture: "amd64",
    os: "linux",
    created: 0,
    ...overrides,
  };
}
