/**
 * Maven, pointed at the vault's `maven` backend (`<vault><prefix>`, the README's "Maven
 * artifacts" section) through the user's `~/.m2/settings.xml`: a `<mirror>` of every repository
 * (`mirrorOf *`) with the id `artifact-vault`, and with a token a `<server>` of the same id
 * (username `token`, the token as the password) that Maven answers the vault's Basic challenge
 * with.
 *
 * The rule: no XML parser is a dependency, and a settings.xml edited line by line could break in
 * ways Maven only reports at build time. So `--write` creates the file when there is none, and
 * replaces it only when this tool wrote it (its first comment says so); any other existing
 * settings.xml is left as it is, with a message saying what to add to it by hand.
 */
import { join } from "node:path";
import { CliError } from "./failure.js";
import type { ConfigFile, SetupInput, SetupPlan, SetupTool } from "./setup-tool.js";

const MAVEN_PREFIX = "/maven/";
const MIRROR_ID = "artifact-vault";
const MARKER = "<!-- written by artifact-vault setup maven, which replaces this file when it writes again -->";

const escapeXml = (value: string): string => value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function settingsXml(input: SetupInput, url: string): string {
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    MARKER,
    '<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">',
    "  <mirrors>",
    "    <mirror>",
    `      <id>${MIRROR_ID}</id>`,
    "      <mirrorOf>*</mirrorOf>",
    `      <url>${escapeXml(url)}</url>`,
    "    </mirror>",
    "  </mirrors>",
  ];
  if (input.token !== undefined) {
    lines.push(
      "  <servers>",
      "    <server>",
      `      <id>${MIRROR_ID}</id>`,
      "      <username>token</username>",
      `      <password>${escapeXml(input.token)}</password>`,
      "    </server>",
      "  </servers>",
    );
  }
  lines.push("</settings>");
  return `${lines.join("\n")}\n`;
}

function settingsFile(input: SetupInput): ConfigFile {
  const path = join(input.home, ".m2", "settings.xml");
  const url = `${input.vault.origin}${input.prefix ?? MAVEN_PREFIX}`;
  const text = settingsXml(input, url);
  return {
    path,
    snippet: text,
    comment: "#",
    secret: input.token !== undefined,
    system: false,
    merge: (existing) => {
      if (existing === undefined || existing.trim() === "" || existing === text || existing.includes(MARKER)) return { text };
      const server = input.token === undefined ? "" : `, and in <servers> a <server> with <id>${MIRROR_ID}</id>, <username>token</username> and your token as <password>`;
      throw new CliError(
        `not merging into ${path}: setup edits an existing settings.xml only if it wrote it. Add to its <mirrors> a <mirror> with <id>${MIRROR_ID}</id>, <mirrorOf>*</mirrorOf> and <url>${url}</url>${server} (run setup maven without --write to print them), or move the file away and run setup again`,
      );
    },
  };
}

export const mavenSetup: SetupTool = {
  name: "maven",
  aliases: ["mvn"],
  summary: "a mirror of every repository (and its server credentials) in ~/.m2/settings.xml",
  defaultPrefix: MAVEN_PREFIX,
  options: [],
  plan: (input): SetupPlan => {
    const file = settingsFile(input);
    const url = `${input.vault.origin}${input.prefix ?? MAVEN_PREFIX}`;
    const insecure = input.vault.scheme === "http" ? "; isAllowInsecureProtocol = true" : "";
    return {
      files: [file],
      notes: [
        `setup --write creates ${file.path} when there is none, and does not edit one it did not write: it then says what to add by hand`,
        `Gradle: repositories { maven { url = uri("${url}")${insecure} } }`,
      ],
    };
  },
};
