import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRequirements } from "./requirements-file.js";

test("pinned lines with extras, markers, hashes and continuations; includes; what is not pinned", () => {
  const listing = parseRequirements(
    [
      "# a pip-compile output",
      "--index-url https://pypi.org/simple",
      "-r base.txt",
      "--constraint=constraints.txt",
      "requests==2.32.3 \\",
      "    --hash=sha256:70761CAA \\",
      "    --hash=sha256:55365417",
      "    # via -r requirements.in",
      'urllib3[socks]==2.2.2 ; python_version >= "3.8"  # comment',
      "Django_Rest.Framework === 3.15.1",
      "flask>=3",
      "numpy==1.*",
      "six",
      "-e ./local-package",
      "./wheels/demo-1.0-py3-none-any.whl",
      "demo @ https://example.com/demo-1.0.tar.gz",
      "",
    ].join("\n"),
  );
  assert.deepEqual(listing.pinned, [
    { name: "requests", version: "2.32.3", exact: false, hashes: ["sha256:70761caa", "sha256:55365417"], text: "requests==2.32.3" },
    { name: "urllib3", version: "2.2.2", exact: false, hashes: [], text: "urllib3==2.2.2" },
    { name: "Django_Rest.Framework", version: "3.15.1", exact: true, hashes: [], text: "Django_Rest.Framework===3.15.1" },
  ]);
  assert.deepEqual(
    listing.unpinned.map((entry) => entry.text),
    ["flask>=3", "numpy==1.*", "six"],
  );
  assert.deepEqual(
    listing.skipped.map((entry) => entry.text),
    ["-e ./local-package", "./wheels/demo-1.0-py3-none-any.whl", "demo @ https://example.com/demo-1.0.tar.gz"],
  );
  assert.deepEqual(listing.includes, ["base.txt", "constraints.txt"]);
});
