import { createHash, timingSafeEqual } from "node:crypto";
import type { ServerConfig } from "../config/schema.js";

/**
 * Checks the Authorization header against the configured bearer token or
 * basic credentials in constant time (both sides are hashed first, so the
 * comparison does not leak the secret's length either).
 */
export function makeAuthCheck(auth: ServerConfig["auth"]): ((header: string | undefined) => boolean) | undefined {
  if (auth === undefined) return undefined;
  const expected = "bearerToken" in auth ? digest(`Bearer ${auth.bearerToken}`) : digest(`Basic ${Buffer.from(`${auth.basic.username}:${auth.basic.password}`).toString("base64")}`);
  const scheme = "bearerToken" in auth ? "Bearer" : "Basic";
  return (header) => {
    if (header === undefined) return false;
    // The scheme is case-insensitive (RFC 9110); normalise it, keep the credentials as sent.
    const m = /^(\S+)\s+(.+)$/.exec(header.trim());
    if (m === null || m[1]!.toLowerCase() !== scheme.toLowerCase()) {
      timingSafeEqual(expected, expected);
      return false;
    }
    return timingSafeEqual(digest(`${scheme} ${m[2]!}`), expected);
  };
}

export function authChallenge(auth: ServerConfig["auth"]): string {
  return auth !== undefined && "basic" in auth ? 'Basic realm="kubecano", charset="UTF-8"' : 'Bearer realm="kubecano"';
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
