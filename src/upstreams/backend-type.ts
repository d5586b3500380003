import type { z } from "zod";
import { renderPlainError, type ErrorRenderer } from "../core/error-rendering.js";
import type { Backend, BackendContext } from "./backend.js";

/**
 * One ecosystem, as the rest of the service sees it: its type name and aliases, the schema of
 * its `config` block, how it makes a backend from the parsed options, and how its errors render.
 * Each ecosystem folder exports one (`npmBackendType`, ...); `backend-types.ts` lists them, and
 * that list is all the config loader, the factory table and the server know of ecosystems.
 */
export interface BackendTypeSpec<Options> {
  /** The canonical name written in configs (`type: npm`). */
  readonly type: string;
  /** Other names accepted for it (`oci` for `dockerhub`). */
  readonly aliases?: readonly string[];
  /** Checks a backend's `config` block; its output is what `create` receives. */
  readonly options: z.ZodType<Options>;
  /** Makes a backend. `where` is its place in the config (`backends[2]`), for error messages. */
  create(name: string, options: Options, context: BackendContext, where: string): Promise<Backend>;
  /** How its errors reach its clients (default plain text). */
  readonly errors?: ErrorRenderer;
}

/** A backend's parsed options, with the factory they are for bound to them. */
export interface ConfiguredBackendOptions {
  /** The parsed options (for inspection and logs; `create` already holds them, typed). */
  readonly options: Readonly<Record<string, unknown>>;
  create(name: string, context: BackendContext, where: string): Promise<Backend>;
}

/** A configured backend, parsed by its type's schema: what `createBackends` makes a backend of. */
export interface BackendDefinition {
  /** The canonical type name (an alias in the config is resolved). */
  readonly type: string;
  readonly name: string;
  /** The parsed options (`prefix`, ...), for inspection and logs. */
  readonly options: Readonly<Record<string, unknown>>;
  create(context: BackendContext, where: string): Promise<Backend>;
}

/** A `BackendTypeSpec` with its options type hidden: what a list of several ecosystems holds. */
export interface BackendType {
  readonly type: string;
  readonly aliases: readonly string[];
  readonly errors: ErrorRenderer;
  /** Parses a `config` block: issues (paths relative to it), or options bound to their factory. */
  configure(input: unknown, params: z.core.ParseContext<z.core.$ZodIssue>): { success: true; value: ConfiguredBackendOptions } | { success: false; issues: z.core.$ZodIssue[] };
}

/** Seals a spec: the typed options reach its factory through a closure, with no cast on the way. */
export function defineBackendType<Options extends Readonly<Record<string, unknown>>>(spec: BackendTypeSpec<Options>): BackendType {
  return {
    type: spec.type,
    aliases: spec.aliases ?? [],
    errors: spec.errors ?? renderPlainError,
    configure(input, params) {
      const result = spec.options.safeParse(input, params);
      if (!result.success) return { success: false, issues: result.error.issues };
      const options = result.data;
      return {
        success: true,
        value: {
          options,
          create: (name, context, where) => spec.create(name, options, context, where),
        },
      };
    },
  };
}
