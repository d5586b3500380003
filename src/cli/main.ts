#!/usr/bin/env -S node --max-semi-space-size=4
import { runCli } from "./program.js";

process.exitCode = await runCli(process.argv);
