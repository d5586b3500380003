import { test } from "node:test";
import assert from "node:assert/strict";
import { requestIdFrom } from "./request-id.js";
import { redactUrl } from "./url-redaction.js";

test("credential-looking query values and userinfo never reach a logged URL", () => {
  const table: ReadonlyArray<readonly [string, string]> = [
    ["/objects/a?api_key=s3cr3t", "/objects/a?api_key=[redacted]"],
    ["/objects/a?token=s3cr3t&prefix=x", "/objects/a?token=[redacted]&prefix=x"],
    ["/x?access_token=a&refresh_token=b&id_token=c", "/x?access_token=[redacted]&refresh_token=[redacted]&id_token=[redacted]"],
    ["/x?X-Amz-Signature=abc&X-Amz-Credential=def&X-Amz-Date=20260101", "/x?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]&X-Amz-Date=20260101"],
    ["/x?password=p&user=u", "/x?password=[redacted]&user=u"],
    ["/x?apiKey=1&sig=2&auth=3", "/x?apiKey=[redacted]&sig=[redacted]&auth=[redacted]"],
    ["/x?api%5Fkey=1", "/x?api%5Fkey=[redacted]"],
    ["/x?keyword=vault&monkey=1", "/x?keyword=vault&monkey=1"],
    ["/objects?prefix=a&limit=10&cursor=abc", "/objects?prefix=a&limit=10&cursor=abc"],
    ["http://user:pass@deb.example/debian/dists/x?token=t", "http://deb.example/debian/dists/x?token=[redacted]"],
    ["/plain/path", "/plain/path"],
    ["/x?token", "/x?token"],
  ];
  for (const [url, expected] of table) assert.equal(redactUrl(url), expected, url);
});

test("a client's X-Request-Id is kept only when short and plain", () => {
  assert.equal(requestIdFrom("build-42.step_7"), "build-42.step_7");
  for (const bad of ["x".repeat(129), "has space", "a\r\nSet-Cookie: x=1", "<script>", "", undefined, ["a", "b"]]) {
    const id = requestIdFrom(bad);
    assert.notEqual(id, bad);
    assert.match(id, /^[0-9a-f-]{36}$/);
  }
});
