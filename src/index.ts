/**
 * `import ... from "artifact-vault"`: the service, to embed it in a program of your own (tests,
 * a custom launcher), and the object store's client. The command line (`artifact-vault serve`)
 * does the same as:
 *
 *     const config = await loadConfig({ file: "vault.yml" });
 *     const vault = await startVault(config);
 *     console.log(vault.url);
 *     await vault.close();
 *
 * Backend plugins import `artifact-vault/plugin`; a client alone can import `artifact-vault/client`.
 */
export { startVault, createLogger, type RunningVault } from "./app.js";
export { loadConfig, ConfigError, type ConfigProblem, type LoadConfigOptions } from "./config/load-config.js";
export { defaultConfig, parseConfig, type VaultConfig } from "./config/schema.js";
export { VaultError, isVaultError, type ErrorKind } from "./core/errors.js";
export { VERSION } from "./version.js";
export * from "./client/index.js";
