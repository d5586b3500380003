import { renderPlainError, type ErrorRenderer } from "../core/error-rendering.js";
import type { Backend, BackendContext } from "./backend.js";
import type { BackendDefinition, BackendType } from "./backend-type.js";
import { customBackendType } from "./custom/custom-type.js";
import { httpBackendType } from "./files/http-type.js";
import { npmBackendType } from "./npm/npm-type.js";
import { ociBackendType } from "./oci/oci-type.js";
import { pypiBackendType } from "./pypi/pypi-type.js";
import { aptBackendType } from "./apt/apt-type.js";
import { goBackendType } from "./go/go-type.js";
import { huggingFaceBackendType } from "./huggingface/huggingface-type.js";
import { mavenBackendType } from "./maven/maven-type.js";
import { rubygemsBackendType } from "./rubygems/rubygems-type.js";
import { cargoBackendType } from "./cargo/cargo-type.js";

/**
 * Every ecosystem the vault speaks. This list is all the config loader (which type a backend
 * names, and the schema of its options), the factory table (`registry.ts`) and the server (how
 * a backend's errors render) know of them: adding an ecosystem is a folder that exports a
 * `BackendType`, and a line here.
 */
export const BACKEND_TYPES: readonly BackendType[] = [httpBackendType, pypiBackendType, ociBackendType, npmBackendType, aptBackendType, goBackendType, mavenBackendType, rubygemsBackendType, cargoBackendType, huggingFaceBackendType, customBackendType];

const BY_NAME: ReadonlyMap<string, BackendType> = new Map(BACKEND_TYPES.flatMap((type) => [type.type, ...type.aliases].map((name) => [name, type] as const)));

/** The type a config names, by its name or an alias; undefined when unknown. */
export function findBackendType(name: string): BackendType | undefined {
  return BY_NAME.get(name);
}

/** Every name a config may give as `type`, for messages. */
export function backendTypeNames(): string[] {
  return [...BY_NAME.keys()];
}

/** How errors of a backend of this (canonical) type reach its clients. */
export function errorRendererOf(type: string): ErrorRenderer {
  return BY_NAME.get(type)?.errors ?? renderPlainError;
}

/** Creates the configured backends (each already parsed by its type's schema when the config was loaded). */
export async function createBackends(definitions: readonly BackendDefinition[], context: BackendContext): Promise<Backend[]> {
  const backends: Backend[] = [];
  try {
    for (const [index, definition] of definitions.entries()) {
      backends.push(await definition.create(context, `backends[${index}]`));
    }
  } catch (error) {
    await Promise.all(backends.map((backend) => backend.close()));
    throw error;
  }
  return backends;
}
