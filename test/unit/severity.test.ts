import { describe, expect, it } from "vitest";
import { mapSeverity } from "../../src/core/severity.js";

describe("mapSeverity", () => {
  it.each([
    ["critical", "HIGH"],
    ["high", "HIGH"],
    ["error", "HIGH"],
    ["warning", "LOW"],
    ["low", "LOW"],
    ["info", "INFO"],
    ["debug", "DEBUG"],
    ["Critical ", "HIGH"],
    ["something-else", "INFO"],
    [undefined, "INFO"],
  ] as const)("%s → %s", (label, expected) => {
    expect(mapSeverity(label)).toBe(expected);
  });

  it("lets config overrides win, case-insensitively", () => {
    expect(mapSeverity("P1", { p1: "HIGH" })).toBe("HIGH");
    expect(mapSeverity("warning", { Warning: "HIGH" })).toBe("HIGH");
  });
});
