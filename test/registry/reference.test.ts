// Image references as a user writes them: REGISTRY/REPOSITORY:TAG, and the mistakes
// that come from URLs and skopeo (a scheme in front) named for what they are.
import test from "ava";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { parseReference } from "../../src/registry/reference.ts";

test("a reference with a scheme in front (http://, https://, docker://) is NIFTY700 saying to drop it", (t) => {
  for (const scheme of ["http", "https", "docker"]) {
    const text = `${scheme}://127.0.0.1:5000/team/app:1`;
    const error = t.throws(() => parseReference(text), { instanceOf: NiftyError });
    t.is(error?.code, "NIFTY700");
    t.is(
      error?.message,
      `${JSON.stringify(text)} is not an image reference: it starts with ${scheme}:// (write it without; plain http to a registry on this machine is --insecure)`,
    );
  }
  t.deepEqual(parseReference("127.0.0.1:5000/team/app:1"), {
    registry: "127.0.0.1:5000",
    repository: "team/app",
    tag: "1",
  });
});
