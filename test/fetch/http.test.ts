// undici's parts loaded from their own files (src/fetch/http.ts): the same objects the package's
// entry gives, and a request through them sends the URL's path and query, and follows redirects.
import test from "ava";
import { loadHttp } from "../../src/fetch/http.ts";
import { startServer } from "./helpers/server.ts";

test("the parts are the package's own: the Agent and the redirect interceptor undici exports", async (t) => {
  const undici = await import("undici");
  const http = loadHttp();
  t.is(http.Agent, undici.Agent);
  t.is(http.redirect, undici.interceptors.redirect);
});

test("a request sends the URL's path and query, and follows a redirect through the composed agent", async (t) => {
  const server = await startServer({
    "/moved": (_req, res) => res.writeHead(302, { location: "/here/file.deb?a=1&b=two%20words" }).end(),
    "/here/file.deb": (req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(req.url),
  });
  t.teardown(server.close);
  const http = loadHttp();
  const agent = new http.Agent({ connections: 2 });
  t.teardown(() => agent.close());
  const dispatcher = agent.compose(http.redirect({ maxRedirections: 3 }));
  const direct = await http.request(`${server.url}/here/file.deb?q=%2F`, { dispatcher, method: "GET" });
  t.is(direct.statusCode, 200);
  t.is(await direct.body.text(), "/here/file.deb?q=%2F");
  const moved = await http.request(`${server.url}/moved`, { dispatcher, method: "GET" });
  t.is(moved.statusCode, 200);
  t.is(await moved.body.text(), "/here/file.deb?a=1&b=two%20words");
  t.is(server.hits("/moved"), 1);
  t.is(server.hits("/here/file.deb"), 2);
});
