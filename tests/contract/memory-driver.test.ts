import { MemoryDriver } from "../../src/storage/memory-driver.js";
import { runStorageDriverContract } from "./storage-driver.contract.js";

runStorageDriverContract("memory", async (options) => new MemoryDriver(options));
