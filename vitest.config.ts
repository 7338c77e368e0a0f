import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // End-to-end tests start real processes (kubecano, Alertmanager); two cores here.
    maxWorkers: process.env["CI"] === "true" ? 2 : 3,
    reporters: process.env["CI"] === "true" ? ["default"] : ["default"],
  },
});
