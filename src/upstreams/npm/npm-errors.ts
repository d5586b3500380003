import type { ErrorRenderer } from "../../core/error-rendering.js";

/**
 * npm's error body, `{"error": "..."}`, as the public registry and Verdaccio answer: npm, pnpm
 * and yarn print its `error` after the status (`npm error 404 Not Found - GET ... - <error>`).
 */
export const renderNpmError: ErrorRenderer = (report) => ({
  contentType: "application/json; charset=utf-8",
  body: { error: report.message },
});
