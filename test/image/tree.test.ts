// Paths through the image's own links: Tree.resolve follows them the way the
// kernel would inside the image (never the host's), and every lookup uses it.
import test from "ava";
import { Tree, TreeError, type TreeNode } from "../../src/image/tree.ts";

const dir: TreeNode = { type: "dir", mode: 0o755, uid: 0, gid: 0 };
const file: TreeNode = {
  type: "file",
  mode: 0o755,
  uid: 0,
  gid: 0,
  content: { digest: "sha256:00", size: 0 },
};
const link = (target: string): TreeNode => ({ type: "symlink", mode: 0o777, uid: 0, gid: 0, target });

function tree(entries: Record<string, TreeNode>): Tree {
  const t = new Tree();
  for (const [path, node] of Object.entries(entries)) t.set(path, node);
  return t;
}

/** Debian 13's layout: /lib64 → usr/lib64, whose loader links to ../lib/x86_64-linux-gnu/. */
const merged = (): Tree =>
  tree({
    "/usr": dir,
    "/usr/lib": dir,
    "/usr/lib/x86_64-linux-gnu": dir,
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": file,
    "/usr/lib64": dir,
    "/usr/lib64/ld-linux-x86-64.so.2": link("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    "/lib64": link("usr/lib64"),
    "/lib": link("/usr/lib"),
  });

test("a link to a directory, then a relative link inside it: the merged-/usr loader", (t) => {
  const image = merged();
  t.is(image.resolve("/lib64/ld-linux-x86-64.so.2"), "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  t.deepEqual(image.linksOn("/lib64/ld-linux-x86-64.so.2"), ["/lib64", "/usr/lib64/ld-linux-x86-64.so.2"]);
  t.is(image.lookup("/lib64/ld-linux-x86-64.so.2")?.node.type, "file");
  t.is(
    image.resolve("/lib64/ld-linux-x86-64.so.2", false),
    "/usr/lib64/ld-linux-x86-64.so.2",
    "the last link kept",
  );
});

test("an absolute target restarts at the image's root, and a chain of links is followed", (t) => {
  const image = merged();
  image.set("/opt", link("/lib"));
  image.set("/usr/lib/x86_64-linux-gnu/libc.so.6", link("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
  t.is(image.resolve("/opt/x86_64-linux-gnu/libc.so.6"), "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  t.deepEqual(image.linksOn("/opt/x86_64-linux-gnu/libc.so.6"), [
    "/opt",
    "/lib",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib",
  ]);
});

test("`..` after a link goes to the parent of where the link led, as the kernel does, never above the root", (t) => {
  const image = merged();
  image.set("/usr/lib/sibling", file);
  image.set("/deep", link("usr/lib/x86_64-linux-gnu"));
  // /deep/.. is /usr/lib, not / (a lexical clean-up of "deep/../sibling" would say /sibling).
  image.set("/via", link("deep/../sibling"));
  t.is(image.resolve("/via"), "/usr/lib/sibling");
  image.set("/up", link("../../../usr/lib/sibling"));
  t.is(image.resolve("/up"), "/usr/lib/sibling");
});

test("missing parts: a missing last component is where it would be; a missing directory on the way is undefined", (t) => {
  const image = merged();
  t.is(image.resolve("/lib64/nothing-yet"), "/usr/lib64/nothing-yet");
  t.is(image.resolve("/lib64/no-dir/file"), undefined);
  t.is(
    image.resolve("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2/below"),
    undefined,
    "a file is not a directory",
  );
  t.is(image.lookup("/lib64/nothing-yet"), undefined);
});

test("a link loop is an error, not a hang", (t) => {
  const image = tree({ "/a": link("b"), "/b": link("/a"), "/self": link("self") });
  for (const path of ["/a", "/a/x", "/self"]) {
    const error = t.throws(() => image.resolve(path), { instanceOf: TreeError });
    t.regex(error!.message, /too many levels of symbolic links/);
  }
  t.is(image.resolve("/self", false), "/self", "not followed, the loop is harmless");
});

test("walk with create makes the missing directories a link leads through", (t) => {
  const image = tree({ "/bin": link("usr/bin") });
  t.is(image.walk("/bin/busybox", { followLast: true, create: true }).path, "/usr/bin/busybox");
  t.is(image.get("/usr/bin")?.type, "dir");
  t.is(image.get("/bin")?.type, "symlink", "the link stays a link");
});

test("sortedPaths, asked again after paths are added (by set or straight into nodes), lists them in archive order", (t) => {
  const tree = new Tree();
  tree.set("/usr", dir);
  tree.set("/usr/bin", dir);
  t.deepEqual(tree.sortedPaths(), ["/", "/usr", "/usr/bin"]);
  tree.set("/etc", dir);
  tree.set("/usr/bin", { ...dir, mode: 0o700 });
  t.deepEqual(tree.sortedPaths(), ["/", "/etc", "/usr", "/usr/bin"]);
  tree.nodes.set("/usr-x", dir);
  t.deepEqual(tree.sortedPaths(), ["/", "/etc", "/usr", "/usr-x", "/usr/bin"]);
});
