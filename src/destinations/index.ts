import type { DestinationConfig } from "../config/schema.js";
import { DESTINATION_TYPES } from "./registry.js";
import type { Destination, DestinationDeps } from "./types.js";

/** Instantiates configured destinations, loading each type's module only when used. */
export async function createDestinations(configs: readonly DestinationConfig[], deps: DestinationDeps): Promise<Destination[]> {
  const out: Destination[] = [];
  for (const c of configs) out.push(await createDestination(c, deps));
  return out;
}

export async function createDestination(c: DestinationConfig, deps: DestinationDeps): Promise<Destination> {
  const type = DESTINATION_TYPES[c.type];
  const mod = await type.load();
  // The config schema already validated params against this type's schema.
  return (mod.create as (name: string, params: unknown, deps: DestinationDeps) => Destination | Promise<Destination>)(c.name, c.params, deps);
}

export async function closeDestinations(destinations: readonly Destination[]): Promise<void> {
  await Promise.allSettled(destinations.map((d) => d.close?.()));
  const { closeHttpAgent } = await import("./http.js");
  await closeHttpAgent();
}
