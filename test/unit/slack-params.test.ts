import { describe, expect, it } from "vitest";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";

/** The Slack destination's params schema, as the config loader applies it. */

const schema = DESTINATION_TYPES.slack.params;
const TOKEN = "xoxb-1111-2222-SECRETtokenVALUE";
const HOOK = "https://hooks.slack.com/services/T000/B000/SECRETpathVALUE";

/** The problems of a failing parse as "path: message" lines. */
function problems(input: unknown): string[] {
  const r = schema.safeParse(input);
  expect(r.success).toBe(false);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("slack params", () => {
  it("takes a token and a channel (bot mode) with defaults", () => {
    expect(schema.parse({ token: TOKEN, channel: "#alerts" })).toEqual({
      mode: "bot",
      token: TOKEN,
      channel: "#alerts",
      api_url: "https://slack.com/api/",
      timeout: 10_000,
      files: true,
      rate_per_second: 1,
      burst: 3,
      update_interval: 2_000,
      storm: { threshold: 20, update_interval: 2_000, quiet: 30_000 },
    });
  });

  it("accepts api_key and slack_channel as aliases of token and channel", () => {
    const p = schema.parse({ api_key: TOKEN, slack_channel: "C0123ABCD" });
    expect(p).toMatchObject({ mode: "bot", token: TOKEN, channel: "C0123ABCD" });
    expect(p).not.toHaveProperty("api_key");
    expect(p).not.toHaveProperty("slack_channel");
  });

  it("takes an incoming webhook URL alone (webhook mode)", () => {
    const p = schema.parse({ webhook_url: HOOK });
    expect(p).toMatchObject({ mode: "webhook", webhook_url: HOOK });
    expect(p).not.toHaveProperty("token");
  });

  it("parses timeout durations and adds the trailing slash to api_url", () => {
    expect(schema.parse({ token: TOKEN, channel: "#a", timeout: "300ms", api_url: "http://127.0.0.1:9/api" })).toMatchObject({ timeout: 300, api_url: "http://127.0.0.1:9/api/" });
    expect(schema.parse({ token: TOKEN, channel: "#a", timeout: 1.5 })).toMatchObject({ timeout: 1500 });
  });

  it.each([
    ["token and webhook_url together", { token: TOKEN, channel: "#a", webhook_url: HOOK }, /^webhook_url: set either token or webhook_url, not both$/],
    ["api_key and webhook_url together", { api_key: TOKEN, channel: "#a", webhook_url: HOOK }, /^webhook_url: set either token or webhook_url/],
    ["a token without a channel", { token: TOKEN }, /^channel: is required with token/],
    ["an alias token without a channel", { api_key: TOKEN }, /^channel: is required with token/],
    ["neither token nor webhook_url", { channel: "#a" }, /^token: set token .* or webhook_url/],
    ["token and api_key together", { token: TOKEN, api_key: TOKEN, channel: "#a" }, /^api_key: set either token or its alias api_key/],
    ["channel and slack_channel together", { token: TOKEN, channel: "#a", slack_channel: "#b" }, /^slack_channel: set either channel or its alias slack_channel/],
    ["an unknown key", { token: TOKEN, channel: "#a", chanel: "#b" }, /chanel/],
    ["a bad timeout", { token: TOKEN, channel: "#a", timeout: "soon" }, /^timeout: invalid duration/],
    ["a non-http webhook URL", { webhook_url: "ftp://hooks.slack.com/x" }, /^webhook_url: expected an http\(s\) URL$/],
    ["a bad icon_emoji", { token: TOKEN, channel: "#a", icon_emoji: "siren" }, /^icon_emoji: expected an emoji/],
    ["an empty token", { token: "", channel: "#a" }, /^token:/],
  ])("refuses %s", (_name, input, expected) => {
    const p = problems(input);
    expect(p.some((line) => expected.test(line))).toBe(true);
  });

  it("takes pacing, storm and file settings; storm: false turns storm mode off", () => {
    expect(schema.parse({ token: TOKEN, channel: "#a", rate_per_second: 0.5, burst: 1, update_interval: "5s", files: false, storm: { threshold: 50, quiet: "1m" } })).toMatchObject({
      rate_per_second: 0.5,
      burst: 1,
      update_interval: 5_000,
      files: false,
      storm: { threshold: 50, update_interval: 2_000, quiet: 60_000 },
    });
    expect(schema.parse({ token: TOKEN, channel: "#a", storm: false })).toMatchObject({ storm: false });
  });

  it("takes a channel template with a fallback channel, and mentions", () => {
    const p = schema.parse({ token: TOKEN, channel: "#alerts-{{ labels.team }}", fallback_channel: "#alerts", mentions: ["<@U0123ABCD>", "<!subteam^S0123ABCD>", "<!here>"] });
    expect(p).toMatchObject({ channel: "#alerts-{{ labels.team }}", fallback_channel: "#alerts", mentions: ["<@U0123ABCD>", "<!subteam^S0123ABCD>", "<!here>"] });
  });

  it.each([
    ["a channel template without fallback_channel", { token: TOKEN, channel: "#alerts-{{ labels.team }}" }, /^fallback_channel: is required when channel is a template/],
    ["a broken channel template", { token: TOKEN, channel: "#alerts-{{ labels.team | shout }}", fallback_channel: "#a" }, /^channel: invalid template .*unknown filter "shout"/],
    ["a templated fallback", { token: TOKEN, channel: "#a", fallback_channel: "#{{ labels.x }}" }, /^fallback_channel: must be a plain channel/],
    ["a malformed mention", { token: TOKEN, channel: "#a", mentions: ["@oncall"] }, /^mentions\.0: expected a Slack mention/],
    ["a zero rate", { token: TOKEN, channel: "#a", rate_per_second: 0 }, /^rate_per_second:/],
    ["a fractional burst", { token: TOKEN, channel: "#a", burst: 1.5 }, /^burst:/],
    ["a storm threshold of 1", { token: TOKEN, channel: "#a", storm: { threshold: 1 } }, /^storm/],
    ["storm: true", { token: TOKEN, channel: "#a", storm: true }, /^storm/],
  ])("refuses %s", (_name, input, expected) => {
    const p = problems(input);
    expect(p.some((line) => expected.test(line)), p.join("\n")).toBe(true);
  });

  it("never echoes a secret in its error messages", () => {
    const r = schema.safeParse({ token: TOKEN, webhook_url: `${HOOK}?x=<bad>`, channel: 5 });
    expect(r.success).toBe(false);
    const text = JSON.stringify(r.error?.issues.map((i) => i.message));
    expect(text).not.toContain("SECRET");
  });
});
